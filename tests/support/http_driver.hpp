// tests/support/http_driver.hpp: feeds bytes to a weft HTTP parser the way a connection would,
// in pieces of any size, and records what it reported as plain owned values, so that two runs
// (whole, split at a point, byte by byte) can be compared with ==.
//
// The driver keeps the contract of <weft/net/http/parser.hpp>: it passes the unconsumed bytes
// again with new bytes after them, copies the views before it erases the bytes they point into,
// and compacts its buffer after every call (so the parser's offsets are exercised, never its
// pointers).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/net/http/parser.hpp>

namespace weft_test {

struct http_message {
  std::string method;  // requests
  std::string target;
  int status = 0;  // responses
  std::string reason;
  weft::http::version version = weft::http::version::http_1_1;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool keep_alive = false;
  bool expect_continue = false;
  weft::http::body_framing framing = weft::http::body_framing::none;
  std::uint64_t content_length = 0;

  bool operator==(const http_message&) const = default;
};

struct http_outcome {
  std::vector<http_message> messages;  // the complete ones, in order
  weft::http::parse_error error = weft::http::parse_error::none;
  bool closed = false;   // finish() reported a clean end
  bool partial = false;  // a head was reported but its message never completed

  bool operator==(const http_outcome&) const = default;
};

inline std::vector<std::pair<std::string, std::string>> copy_fields(
    std::span<const weft::http::header> fields) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : fields)
    out.emplace_back(std::string(f.name), std::string(f.value));
  return out;
}

inline void copy_head(http_message& m, const weft::http::request_head& h) {
  m.method = h.method;
  m.target = h.target;
  m.expect_continue = h.expect_continue;
}
inline void copy_head(http_message& m, const weft::http::response_head& h) {
  m.status = h.status;
  m.reason = h.reason;
}

// Feeds `pieces` in order to `parser`; with `finish`, then tells it the peer closed. For a
// response parser, `methods[i]` is the method of the request the i-th response answers ("GET"
// when there are fewer).
template <class Parser>
http_outcome drive(Parser& parser, const std::vector<std::string_view>& pieces, bool finish,
                   const std::vector<std::string>& methods = {}) {
  http_outcome out;
  http_message current;
  bool in_message = false;
  std::string buffer;
  auto expect = [&] {
    if constexpr (requires { parser.expect_response_to(std::string_view{}); }) {
      // Interim (1xx) responses share their request's method: count only final responses.
      std::size_t finals = 0;
      for (const auto& m : out.messages)
        finals += m.status >= 200 ? 1 : 0;
      parser.expect_response_to(finals < methods.size() ? methods[finals] : "GET");
    }
  };
  expect();
  auto handle = [&](const weft::http::parse_step& step) {
    using weft::http::parse_event;
    switch (step.event) {
      case parse_event::head: {
        const auto& h = parser.head();
        current = http_message{};
        copy_head(current, h);
        current.version = h.version;
        current.headers = copy_fields(h.headers);
        current.keep_alive = h.keep_alive;
        current.framing = h.framing;
        current.content_length = h.content_length;
        in_message = true;
        break;
      }
      case parse_event::body:
        current.body.append(step.data);
        break;
      case parse_event::complete:
        current.trailers = copy_fields(parser.trailers());
        out.messages.push_back(std::move(current));
        current = http_message{};
        in_message = false;
        expect();
        break;
      case parse_event::error:
        out.error = parser.error();
        break;
      case parse_event::closed:
        out.closed = true;
        break;
      case parse_event::need_more:
        break;
    }
    buffer.erase(0, step.consumed);
  };
  for (std::string_view piece : pieces) {
    buffer.append(piece);
    for (;;) {
      const auto step = parser.parse(buffer);
      handle(step);
      if (step.event == weft::http::parse_event::need_more) break;
      if (step.event == weft::http::parse_event::error) {
        out.partial = in_message;
        return out;
      }
    }
  }
  if (finish) {
    for (int i = 0; i < 2; ++i) {
      const auto step = parser.finish();
      handle(step);
      if (step.event != weft::http::parse_event::complete) break;
    }
  }
  out.partial = in_message;
  return out;
}

// `input` split into pieces of `size` bytes (the last may be shorter); size 0 means whole.
inline std::vector<std::string_view> pieces_of(std::string_view input, std::size_t size) {
  if (size == 0 || input.empty()) return {input};
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at < input.size(); at += size)
    out.push_back(input.substr(at, size));
  return out;
}

}  // namespace weft_test
