// <weft/net/http/serializer.hpp>: writes HTTP/1.1 requests and responses: the start line, the
// header fields, and the framing of the body (Content-Length, or chunked with trailers).
//
//   std::string out;
//   const weft::http::header headers[] = {{"Content-Type", "text/plain"}};
//   weft::http::write_response_head(out, {200}, headers, weft::http::framing::content_length(13));
//   out += "Hello, world!";
//
//   weft::http::write_request_head(out, {"POST", "/upload"}, headers2,
//   weft::http::framing::chunked()); weft::http::write_chunk(out, part1);              // as the
//   body is produced weft::http::write_last_chunk(out);                // ends the body (trailers
//   optional)
//
// The serializer owns the framing: a header named Content-Length or Transfer-Encoding among
// `headers` is an error, so that no message it writes can carry two framings. It refuses what
// would let a caller's data change the message's shape (header injection): names that are not
// tokens, values with CR, LF or other control characters, targets with spaces or control
// characters. Those throw std::invalid_argument naming the field, and append nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <weft/net/http/message.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::http {

struct request_line {
  std::string_view method;
  std::string_view target;
  http::version version = version::http_1_1;
};

struct status_line {
  int status = 200;
  std::string_view reason = {};  // empty: reason_phrase(status)
  http::version version = version::http_1_1;
};

// How the body that follows the head is delimited.
struct framing {
  body_framing kind = body_framing::none;
  std::uint64_t length = 0;

  // No body, and no length header (requests without a body, 1xx, 204, 304).
  static constexpr framing none() noexcept { return {}; }
  static constexpr framing content_length(std::uint64_t n) noexcept {
    return {body_framing::length, n};
  }
  // Transfer-Encoding: chunked; follow with write_chunk() and one write_last_chunk().
  static constexpr framing chunked() noexcept { return {body_framing::chunked, 0}; }
  // Responses only: the body ends when the connection closes (add `Connection: close`).
  static constexpr framing until_close() noexcept { return {body_framing::close, 0}; }
};

WEFT_API void write_request_head(std::string& out, const request_line& line,
                                 std::span<const header> headers, framing body = {});
WEFT_API void write_response_head(std::string& out, const status_line& line,
                                  std::span<const header> headers, framing body = {});
// One chunk of a chunked body. Empty data writes nothing (an empty chunk would end the body).
WEFT_API void write_chunk(std::string& out, std::string_view data);
// The last chunk and the trailer section that ends a chunked body.
WEFT_API void write_last_chunk(std::string& out, std::span<const header> trailers = {});

// The standard reason phrase of a status code ("Not Found"), or "" for an unknown one.
[[nodiscard]] WEFT_API std::string_view reason_phrase(int status) noexcept;

}  // namespace weft::http
