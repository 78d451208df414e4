// <weft/net/http/message.hpp>: the parts of an HTTP/1.1 message as the parser reports them.
//
//   weft::http::request_parser parser;
//   auto step = parser.parse(buffer);                  // see <weft/net/http/parser.hpp>
//   if (step.event == weft::http::parse_event::head) {
//     const weft::http::request_head& head = parser.head();
//     if (const weft::http::header* type = head.find("content-type")) use(type->value);
//   }
//
// Every string_view here points into the caller's buffer (the bytes passed to the parse() call
// that reported the head): the parser copies no header. The `headers` span points into the
// parser, and stays valid until the parser reports the next head. The rule for keeping the bytes
// alive is in parser.hpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <weft/scheduler/export.hpp>

namespace weft::http {

// One header field, name and value as received: the name in its original case, the value
// without its leading and trailing whitespace.
struct header {
  std::string_view name;
  std::string_view value;
};

// One header field to send, owned: a response's (server) or a request's (client). The server and
// the client frame the message themselves (Content-Length, Transfer-Encoding).
// (A constructor, not an aggregate: clang 14 has no parenthesized aggregate initialization, so
// `headers.emplace_back(name, value)` needs one.)
struct field {
  field() = default;
  field(std::string field_name, std::string field_value) noexcept
      : name(std::move(field_name)), value(std::move(field_value)) {}
  std::string name;
  std::string value;
};

// The two versions weft speaks; anything else is 505 (requests) or an error (responses).
enum class version : std::uint8_t { http_1_0, http_1_1 };

// How the body of a message is delimited (RFC 9112 section 6.3).
enum class body_framing : std::uint8_t {
  none,     // no body: no Content-Length or Transfer-Encoding on a request, HEAD, 1xx, 204, 304
  length,   // Content-Length bytes (content_length)
  chunked,  // Transfer-Encoding: chunked, possibly with trailers
  close,    // responses only: everything until the server closes the connection
};

// ASCII case-insensitive equality, the comparison for header names and tokens.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The first header named `name` (case-insensitive), or nullptr.
[[nodiscard]] constexpr const header* find_header(std::span<const header> headers,
                                                  std::string_view name) noexcept {
  for (const header& h : headers)
    if (iequals(h.name, name)) return &h;
  return nullptr;
}

// What a request and a response have in common once their head is parsed.
struct message_head {
  http::version version = version::http_1_1;
  std::span<const header> headers;
  body_framing framing = body_framing::none;
  std::uint64_t content_length = 0;  // the body's length when framing is `length`, else 0
  // Whether the connection may carry another message after this one: HTTP/1.1 unless
  // `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`, never after a body
  // delimited by close.
  bool keep_alive = true;

  [[nodiscard]] const header* find(std::string_view name) const noexcept {
    return find_header(headers, name);
  }
};

struct request_head : message_head {
  std::string_view method;  // case-sensitive token, e.g. "GET"
  std::string_view target;  // as sent: origin-form "/a?b", absolute-form, authority-form or "*"
  bool expect_continue = false;  // `Expect: 100-continue`: the client waits before sending the body
};

struct response_head : message_head {
  int status = 0;           // 100..599
  std::string_view reason;  // may be empty
};

}  // namespace weft::http
