// <weft/net/http/parser.hpp>: weft's strict, incremental HTTP/1.1 parser, for requests and
// responses. It does no I/O: it reads whatever bytes have arrived, however they were split, and
// says what they hold.
//
//   weft::http::request_parser parser;            // limits: parser_limits{} (16 KiB head ...)
//   std::string buffer;                           // the bytes not yet consumed, in order
//   for (;;) {
//     auto step = parser.parse(buffer);
//     switch (step.event) {
//       case parse_event::need_more: read_more_into(buffer); break;
//       case parse_event::head:      on_head(parser.head()); break;
//       case parse_event::body:      on_body(step.data); break;
//       case parse_event::complete:  on_done(parser.trailers()); break;  // next message follows
//       case parse_event::error:     answer(parser.error().status); close(); break;
//       case parse_event::closed:    break;                                // only from finish()
//     }
//     forget_later(step.consumed);   // see "the buffer" below
//   }
//
// Events, one per call: `head` once per message, then `body` zero or more times, then `complete`.
// A message without a body goes straight from `head` to `complete`. After `complete` the next
// call starts the next message in the same buffer (pipelining). `error` is final: every later call
// returns it again, and the connection must be closed after answering error().status.
//
// The buffer. Each call is passed the bytes that earlier calls did not report as consumed, in
// order, followed by whatever arrived since. `step.consumed` bytes at the front are then the
// caller's, but the views the parser hands out point into them:
//   - head() and its headers point into the bytes consumed by the call that returned `head`;
//   - `step.data` points into the bytes consumed by its own call;
//   - trailers() point into the bytes consumed by the call that returned `complete`.
// So drop or move consumed bytes only when you are done with the views into them. Bytes not yet
// consumed may move freely between calls (the parser keeps offsets, not pointers, while a head is
// incomplete), so a buffer may grow or be compacted at any time as long as the unconsumed bytes
// stay in order. The parser consumes nothing of a head or a trailer section until it is complete,
// and never rescans bytes it has seen: feeding a message one byte at a time costs the same as
// feeding it whole.
//
// Strictness (RFC 9112, and the request-smuggling vectors; docs/patterns/http.md explains each):
// every line ends in CRLF (a bare LF or a bare CR is 400), no obs-fold, no whitespace between a
// field name and its colon, token characters only in methods and field names, no control
// characters in values or targets, Transfer-Encoding with Content-Length is 400, differing
// Content-Lengths are 400 (identical duplicates are accepted), a request's Transfer-Encoding must
// end in chunked (400) and contain no other coding (501), chunk sizes are hex without overflow.
// HTTP/1.1 requests need exactly one Host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <weft/net/http/message.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::http {

// The limits a hostile peer cannot outgrow. The defaults suit a server; a client that downloads
// large bodies raises max_body_bytes.
struct parser_limits {
  // The start line, the header fields and the empty line that ends them: 431 beyond it. The same
  // bound applies to a trailer section.
  std::size_t max_head_bytes = 16 * 1024;
  // Header fields in one head (or trailer fields in one trailer section): 431 beyond it.
  std::size_t max_headers = 100;
  // The request target: 414 beyond it.
  std::size_t max_target_bytes = 8 * 1024;
  // The body, after removing the chunked framing: 413 beyond it.
  std::uint64_t max_body_bytes = std::uint64_t{1} << 20;
  // One chunk-size line with its extensions: 400 beyond it.
  std::size_t max_chunk_line_bytes = 4 * 1024;
};

// Why a message was rejected. status_of() gives the status a server answers with.
enum class parse_error : std::uint8_t {
  none,
  bad_start_line,       // 400: not `method SP target SP version` / `version SP code SP reason`
  bad_method,           // 400: a method that is not a token
  bad_target,           // 400: an empty target or one with a control character or space
  target_too_long,      // 414
  bad_version,          // 400: not `HTTP/<digit>.<digit>`
  unsupported_version,  // 505: HTTP/<digit>.<digit> other than 1.0 and 1.1
  bad_status,           // 400: a status code that is not three digits from 100 to 599
  bad_header_name,      // 400: an empty field name, a non-token character, no colon
  space_before_colon,   // 400: `Name : value` (RFC 9112 5.1: MUST reject)
  obs_fold,             // 400: a field line starting with space or tab
  bad_header_value,     // 400: a control character in a field value
  bare_cr,              // 400: a CR not followed by LF
  bare_lf,              // 400: a LF not preceded by CR
  head_too_large,       // 431: more than max_head_bytes
  too_many_headers,     // 431: more than max_headers
  missing_host,         // 400: an HTTP/1.1 request without Host
  duplicate_host,       // 400: more than one Host
  bad_content_length,   // 400: not 1*DIGIT, or larger than 2^63
  conflicting_content_length,   // 400: two different Content-Length values
  length_with_chunked,          // 400: Transfer-Encoding together with Content-Length
  chunked_not_last,             // 400: a request's Transfer-Encoding not ending in chunked
  chunked_twice,                // 400: chunked applied more than once
  unsupported_coding,           // 501: a transfer coding other than chunked
  transfer_encoding_in_http10,  // 400: Transfer-Encoding on an HTTP/1.0 request
  bad_chunk_size,               // 400: a chunk size that is not hex, or bad chunk extensions
  chunk_size_overflow,          // 400: a chunk size that does not fit in 64 bits
  chunk_line_too_long,          // 400: a chunk-size line longer than max_chunk_line_bytes
  bad_chunk_end,                // 400: chunk data not followed by CRLF
  body_too_large,               // 413: more than max_body_bytes
  truncated,                    // 400: the connection closed in the middle of a message
};

// The status a server answers a rejected request with (400, 413, 414, 431, 501, 505).
[[nodiscard]] WEFT_API int status_of(parse_error error) noexcept;
// A short English sentence naming what was wrong ("Transfer-Encoding together with
// Content-Length").
[[nodiscard]] WEFT_API std::string_view describe(parse_error error) noexcept;

enum class parse_event : std::uint8_t {
  need_more,  // nothing to report yet: pass the unconsumed bytes again with more after them
  head,       // head() is ready
  body,       // step.data holds the next body bytes (chunk framing removed)
  complete,   // the message is done; trailers() holds a chunked body's trailer fields
  error,      // error() says why; final
  closed,     // from finish() only: the peer closed between messages, a clean end
};

struct parse_step {
  parse_event event = parse_event::need_more;
  std::size_t consumed = 0;  // bytes at the front of the buffer the parser is done with
  std::string_view data;     // the body bytes of a `body` event
};

// The exception a caller may throw with a parse_error (the parser itself never throws for bad
// input; it reports parse_event::error).
class WEFT_API bad_message : public std::runtime_error {
 public:
  explicit bad_message(parse_error error);
  [[nodiscard]] parse_error error() const noexcept { return error_; }
  [[nodiscard]] int status() const noexcept { return status_of(error_); }

 private:
  parse_error error_;
};

namespace detail {
class parser_core;
}

// Parses the requests a client sends on one connection, one after another.
class WEFT_API request_parser {
 public:
  explicit request_parser(const parser_limits& limits = {});
  ~request_parser();
  request_parser(request_parser&&) noexcept;
  request_parser& operator=(request_parser&&) noexcept;

  // Reads as far as `buffer` allows and reports the first event. Never throws for bad input.
  [[nodiscard]] parse_step parse(std::string_view buffer);
  // The peer closed: `closed` between messages, else error `truncated`.
  [[nodiscard]] parse_step finish();

  // Valid from a `head` event until the next one (views into the caller's buffer: see above).
  [[nodiscard]] const request_head& head() const noexcept;
  // Valid from a `complete` event until the next parse() call.
  [[nodiscard]] std::span<const header> trailers() const noexcept;
  [[nodiscard]] parse_error error() const noexcept;

 private:
  std::unique_ptr<detail::parser_core> core_;
};

// Parses the responses a server sends on one connection. A response's framing depends on the
// request it answers: call expect_response_to(method) before feeding each response (a HEAD
// request's response has no body whatever its headers say; so do a CONNECT's 2xx, 1xx, 204 and
// 304). Interim 1xx responses are reported as messages of their own; the method stays in force
// until the final response completes. After a 101 or a CONNECT's 2xx the connection is no longer
// HTTP: stop feeding the parser.
class WEFT_API response_parser {
 public:
  explicit response_parser(const parser_limits& limits = {});
  ~response_parser();
  response_parser(response_parser&&) noexcept;
  response_parser& operator=(response_parser&&) noexcept;

  void expect_response_to(std::string_view method);
  [[nodiscard]] parse_step parse(std::string_view buffer);
  // The server closed: `complete` ends a body delimited by close, `closed` between messages,
  // else error `truncated`.
  [[nodiscard]] parse_step finish();

  [[nodiscard]] const response_head& head() const noexcept;
  [[nodiscard]] std::span<const header> trailers() const noexcept;
  [[nodiscard]] parse_error error() const noexcept;

 private:
  std::unique_ptr<detail::parser_core> core_;
};

}  // namespace weft::http
