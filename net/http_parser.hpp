// net/http_parser.hpp (private): the state machine behind request_parser and response_parser.
//
// One engine parses both kinds of message; only the start line and the body rules differ. It is
// a loop over states, each of which either needs more bytes (return need_more with what was
// consumed so far), produces an event (return it), or moves to the next state.
//
// Invariant: while a head or a trailer section is incomplete, nothing of it is consumed, and all
// that the parser remembers about it are offsets from the first unconsumed byte (scan_,
// line_start_, fields_). The caller may therefore move or compact its buffer between calls. scan_
// only grows while the section is incomplete, so every byte is looked at once: feeding a head one
// byte at a time is linear, not quadratic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <weft/net/http/message.hpp>
#include <weft/net/http/parser.hpp>

namespace weft::http::detail {

enum class message_kind : std::uint8_t { request, response };

class parser_core {
 public:
  parser_core(message_kind kind, const parser_limits& limits);

  parse_step parse(std::string_view buffer);
  parse_step finish();
  void expect_response_to(std::string_view method);

  request_head request;
  response_head response;
  std::vector<header> trailer_views;
  parse_error error = parse_error::none;

 private:
  enum class state : std::uint8_t {
    head,         // scanning the start line and the header fields
    length_body,  // remaining_ bytes of a Content-Length body
    close_body,   // a response body that ends when the server closes
    chunk_size,   // a chunk-size line
    chunk_data,   // remaining_ bytes of a chunk
    chunk_end,    // the CRLF after a chunk's data
    trailers,     // the trailer section after the last chunk
    done,         // the message ended; `complete` is reported next
    failed,       // error is set; final
  };
  enum class scan : std::uint8_t { more, done, failed };

  // An incomplete header field, as offsets from the first unconsumed byte.
  struct field_offsets {
    std::uint32_t name;
    std::uint32_t name_length;
    std::uint32_t value;
    std::uint32_t value_length;
  };
  // The three parts of the start line: method, target, version (requests) or version, status,
  // reason (responses), as offsets.
  struct span_offsets {
    std::uint32_t at = 0;
    std::uint32_t length = 0;
  };

  parse_step fail(parse_error e, std::size_t consumed);
  // Scans the lines of a head (head == true) or trailer section from scan_ on; on `done`, `end` is
  // the offset just past the empty line.
  scan scan_section(std::string_view rest, bool head, std::size_t& end);
  bool parse_request_line(std::string_view rest, std::size_t at, std::size_t length);
  bool parse_status_line(std::string_view rest, std::size_t at, std::size_t length);
  bool parse_version(std::string_view text, version& out);
  bool parse_field(std::string_view rest, std::size_t at, std::size_t length);
  // Builds the views of the head and decides the framing; false with error set on a bad head.
  bool finish_head(std::string_view rest);
  bool decide_framing(message_head& head, bool is_request);
  void finish_message();
  void reset_section();

  message_kind kind_;
  parser_limits limits_;
  state state_ = state::head;

  std::size_t scan_ = 0;        // bytes of the current section already searched for LF
  std::size_t line_start_ = 0;  // where the current line of the section begins
  bool start_line_done_ = false;
  span_offsets start_[3];
  std::vector<field_offsets> fields_;
  std::vector<header> header_views_;

  std::uint64_t remaining_ = 0;  // bytes left in the Content-Length body or the current chunk
  std::uint64_t body_seen_ = 0;  // body bytes so far, for max_body_bytes

  // Responses: the method of the request being answered.
  bool answering_head_ = false;
  bool answering_connect_ = false;
};

}  // namespace weft::http::detail
