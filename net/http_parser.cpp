// net/http_parser.cpp: weft's strict, incremental HTTP/1.1 parser (see net/http_parser.hpp for
// the state machine's invariants and <weft/net/http/parser.hpp> for the contract).
//
// Strictness follows RFC 9112 and closes the request-smuggling vectors, the ways two parsers
// (a proxy and a server) can disagree about where a message ends:
//   - every line ends in CRLF: a bare LF is rejected (the RFC allows accepting it; a proxy that
//     does not would see a different message), a CR anywhere else is rejected;
//   - a field line starting with whitespace (obs-fold) and whitespace before the colon are 400;
//   - Content-Length is 1*DIGIT; duplicates must be identical; with Transfer-Encoding it is 400;
//   - Transfer-Encoding must end in chunked and contain only chunked (other codings are 501,
//     because weft does not decode them and must not pass them on as if it did);
//   - chunk sizes are hex digits that fit in 64 bits, extensions follow the grammar.
#include "http_parser.hpp"

#include <array>
#include <cstring>
#include <limits>

namespace weft::http {

namespace {

// tchar (RFC 9110 5.6.2): the characters of methods, field names and transfer codings.
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c)
    table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> token_table = make_token_table();

// field-vchar, SP and HTAB (RFC 9110 5.5): what a field value, a reason phrase and a quoted
// string may hold. obs-text (0x80-0xFF) is allowed; every other control character is not.
constexpr std::array<bool, 256> make_value_table() {
  std::array<bool, 256> table{};
  table['\t'] = true;
  for (int c = 0x20; c <= 0x7e; ++c)
    table[c] = true;
  for (int c = 0x80; c <= 0xff; ++c)
    table[c] = true;
  return table;
}
constexpr std::array<bool, 256> value_table = make_value_table();

bool is_token(char c) noexcept { return token_table[static_cast<unsigned char>(c)]; }
bool is_value(char c) noexcept { return value_table[static_cast<unsigned char>(c)]; }
bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool all_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (char c : text)
    if (!is_token(c)) return false;
  return true;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1:
// empty elements are ignored).
template <class Fn>
void for_each_element(std::string_view list, Fn&& fn) {
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string.
bool valid_chunk_extensions(std::string_view text) noexcept {
  std::size_t p = 0;
  const std::size_t n = text.size();
  auto skip_space = [&] {
    while (p < n && is_space(text[p]))
      ++p;
  };
  auto token = [&] {
    const std::size_t from = p;
    while (p < n && is_token(text[p]))
      ++p;
    return p > from;
  };
  while (p < n) {
    skip_space();
    if (p == n || text[p] != ';') return false;
    ++p;
    skip_space();
    if (!token()) return false;
    skip_space();
    if (p < n && text[p] == '=') {
      ++p;
      skip_space();
      if (p < n && text[p] == '"') {
        ++p;
        while (p < n && text[p] != '"') {
          if (text[p] == '\\') ++p;  // quoted-pair: the next character is taken as it is
          if (p == n || !is_value(text[p])) return false;
          ++p;
        }
        if (p == n) return false;
        ++p;  // the closing quote
      } else if (!token()) {
        return false;
      }
    }
  }
  return true;
}

// RFC 3986 3.2: authority = [ userinfo "@" ] host [ ":" port ], where a host is a reg-name
// (unreserved, percent-encoded and sub-delims characters) or an IPv6 literal in brackets. weft
// takes a subset, on purpose: the host must not be empty (RFC 9110 4.2.1: an http URI with an empty
// host is invalid), a port present must have digits, and a bracket literal holds only an IPv6
// address's characters (hex digits, ':' and '.'; its grammar is not checked), neither IPvFuture
// nor a zone. A proxy routes by this authority, so a
// target it cannot name a host by is a 400, not a guess.
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) noexcept { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_unreserved(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) noexcept {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

// The characters of a reg-name or of userinfo (which may also hold ':'), with every '%' followed
// by two hex digits.
bool valid_uri_chars(std::string_view text, bool colon_allowed) noexcept {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size() || !is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
      i += 2;
    } else if (!is_unreserved(c) && !is_sub_delim(c) && !(colon_allowed && c == ':')) {
      return false;
    }
  }
  return true;
}

bool valid_authority(std::string_view authority, bool port_required) noexcept {
  if (const std::size_t at = authority.find('@'); at != std::string_view::npos) {
    if (!valid_uri_chars(authority.substr(0, at), true)) return false;
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : authority.substr(1, close - 1))
      if (!is_hex(c) && c != ':' && c != '.') return false;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return false;
    port = after;
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon);
    if (!valid_uri_chars(host, false)) return false;
  } else if (!valid_uri_chars(host, false)) {
    return false;
  }
  if (host.empty()) return false;
  if (port.empty()) return !port_required;
  if (port.size() == 1) return false;  // ':' with no digits after it
  for (char c : port.substr(1))
    if (!is_digit(c)) return false;
  return true;
}

// RFC 9112 3.2: origin-form ("/path?query"), asterisk-form ("*"), authority-form ("host:port",
// CONNECT only) or absolute-form ("scheme://authority/path..."); anything else is no target at
// all. An absolute-form target must name an authority: that is what a proxy request carries.
bool valid_target_form(std::string_view method, std::string_view target) noexcept {
  if (target[0] == '/' || target == "*") return true;
  if (method == "CONNECT") return valid_authority(target, true);
  if (!is_alpha(target[0])) return false;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (c == ':') {
      if (target.substr(i + 1, 2) != "//") return false;
      const std::string_view rest = target.substr(i + 3);
      return valid_authority(rest.substr(0, rest.find_first_of("/?")), false);
    }
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

}  // namespace

int status_of(parse_error error) noexcept {
  switch (error) {
    case parse_error::target_too_long:
      return 414;
    case parse_error::unsupported_version:
      return 505;
    case parse_error::head_too_large:
    case parse_error::too_many_headers:
      return 431;
    case parse_error::unsupported_coding:
      return 501;
    case parse_error::body_too_large:
      return 413;
    case parse_error::none:
      return 200;
    default:
      return 400;
  }
}

std::string_view describe(parse_error error) noexcept {
  switch (error) {
    case parse_error::none:
      return "no error";
    case parse_error::bad_start_line:
      return "malformed start line";
    case parse_error::bad_method:
      return "method is not a token";
    case parse_error::bad_target:
      return "request target empty, with a space, control character or '#', or in no URI form";
    case parse_error::target_too_long:
      return "request target longer than the limit";
    case parse_error::bad_version:
      return "malformed HTTP version";
    case parse_error::unsupported_version:
      return "HTTP version other than 1.0 and 1.1";
    case parse_error::bad_status:
      return "status code not three digits from 100 to 599";
    case parse_error::bad_header_name:
      return "malformed header field name";
    case parse_error::space_before_colon:
      return "whitespace between a header field name and its colon";
    case parse_error::obs_fold:
      return "header field folded over lines (obs-fold)";
    case parse_error::bad_header_value:
      return "control character in a header field value";
    case parse_error::bare_cr:
      return "CR not followed by LF";
    case parse_error::bare_lf:
      return "LF not preceded by CR";
    case parse_error::head_too_large:
      return "header section larger than the limit";
    case parse_error::too_many_headers:
      return "more header fields than the limit";
    case parse_error::missing_host:
      return "HTTP/1.1 request without Host";
    case parse_error::duplicate_host:
      return "more than one Host header";
    case parse_error::bad_content_length:
      return "malformed or overflowing Content-Length";
    case parse_error::conflicting_content_length:
      return "Content-Length headers that differ";
    case parse_error::length_with_chunked:
      return "Transfer-Encoding together with Content-Length";
    case parse_error::chunked_not_last:
      return "Transfer-Encoding that does not end in chunked";
    case parse_error::chunked_twice:
      return "chunked applied more than once";
    case parse_error::unsupported_coding:
      return "transfer coding other than chunked";
    case parse_error::transfer_encoding_in_http10:
      return "Transfer-Encoding on an HTTP/1.0 request";
    case parse_error::bad_chunk_size:
      return "malformed chunk size or chunk extension";
    case parse_error::chunk_size_overflow:
      return "chunk size that does not fit in 64 bits";
    case parse_error::chunk_line_too_long:
      return "chunk-size line longer than the limit";
    case parse_error::bad_chunk_end:
      return "chunk data not followed by CRLF";
    case parse_error::body_too_large:
      return "body larger than the limit";
    case parse_error::truncated:
      return "connection closed in the middle of a message";
  }
  return "unknown parse error";
}

bad_message::bad_message(parse_error error)
    : std::runtime_error("weft::http: bad message: " + std::string(describe(error)) + " (" +
                         std::to_string(status_of(error)) + ")"),
      error_(error) {}

namespace detail {

parser_core::parser_core(message_kind kind, const parser_limits& limits)
    : kind_(kind), limits_(limits) {
  // Offsets into an incomplete section are 32-bit (field_offsets): a head or trailer section is
  // never allowed to reach 4 GiB, whatever the caller asked for.
  constexpr std::size_t offset_bound = std::size_t{1} << 30;
  if (limits_.max_head_bytes > offset_bound) limits_.max_head_bytes = offset_bound;
}

void parser_core::expect_response_to(std::string_view method) {
  answering_head_ = method == "HEAD";
  answering_connect_ = method == "CONNECT";
}

parse_step parser_core::fail(parse_error e, std::size_t consumed) {
  error = e;
  state_ = state::failed;
  return {parse_event::error, consumed, {}};
}

void parser_core::reset_section() {
  scan_ = 0;
  line_start_ = 0;
  fields_.clear();
}

parse_step parser_core::parse(std::string_view buffer) {
  std::size_t consumed = 0;
  for (;;) {
    const std::string_view rest = buffer.substr(consumed);
    switch (state_) {
      case state::failed:
        return {parse_event::error, 0, {}};

      case state::head: {
        std::size_t end = 0;
        const scan result = scan_section(rest, true, end);
        if (result == scan::more) return {parse_event::need_more, consumed, {}};
        if (result == scan::failed) return {parse_event::error, consumed, {}};
        if (!finish_head(rest.substr(0, end))) return fail(error, consumed);
        return {parse_event::head, consumed + end, {}};
      }

      case state::length_body:
      case state::chunk_data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
        if (n == 0) return {parse_event::need_more, consumed, {}};
        remaining_ -= n;
        body_seen_ += n;
        if (remaining_ == 0) state_ = state_ == state::length_body ? state::done : state::chunk_end;
        return {parse_event::body, consumed + n, rest.substr(0, n)};
      }

      case state::close_body: {
        if (rest.empty()) return {parse_event::need_more, consumed, {}};
        if (rest.size() > limits_.max_body_bytes - body_seen_)
          return fail(parse_error::body_too_large, consumed);
        body_seen_ += rest.size();
        return {parse_event::body, consumed + rest.size(), rest};
      }

      case state::chunk_size: {
        // The first byte is judged as soon as it arrives, and before anything else, so that the
        // verdict does not depend on whether the line's end arrived with it.
        if (rest.empty()) return {parse_event::need_more, consumed, {}};
        if (hex_value(rest[0]) < 0) return fail(parse_error::bad_chunk_size, consumed);
        const void* lf = scan_ < rest.size()
                             ? std::memchr(rest.data() + scan_, '\n', rest.size() - scan_)
                             : nullptr;
        if (lf == nullptr) {
          scan_ = rest.size();
          if (rest.size() > limits_.max_chunk_line_bytes)
            return fail(parse_error::chunk_line_too_long, consumed);
          return {parse_event::need_more, consumed, {}};
        }
        const std::size_t pos = static_cast<const char*>(lf) - rest.data();
        if (pos + 1 > limits_.max_chunk_line_bytes)
          return fail(parse_error::chunk_line_too_long, consumed);
        if (pos == 0 || rest[pos - 1] != '\r') return fail(parse_error::bare_lf, consumed);
        const std::string_view line = rest.substr(0, pos - 1);
        if (line.find('\r') != std::string_view::npos) return fail(parse_error::bare_cr, consumed);
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (; digits < line.size(); ++digits) {
          const int d = hex_value(line[digits]);
          if (d < 0) break;
          if (size > (std::numeric_limits<std::uint64_t>::max() >> 4))
            return fail(parse_error::chunk_size_overflow, consumed);
          size = size * 16 + static_cast<std::uint64_t>(d);
        }
        if (digits == 0 || !valid_chunk_extensions(line.substr(digits)))
          return fail(parse_error::bad_chunk_size, consumed);
        consumed += pos + 1;
        scan_ = 0;
        if (size == 0) {
          reset_section();
          state_ = state::trailers;
        } else {
          if (size > limits_.max_body_bytes - body_seen_)
            return fail(parse_error::body_too_large, consumed);
          remaining_ = size;
          state_ = state::chunk_data;
        }
        break;
      }

      case state::chunk_end: {
        if (rest.empty()) return {parse_event::need_more, consumed, {}};
        if (rest[0] != '\r') return fail(parse_error::bad_chunk_end, consumed);
        if (rest.size() < 2) return {parse_event::need_more, consumed, {}};
        if (rest[1] != '\n') return fail(parse_error::bare_cr, consumed);
        consumed += 2;
        state_ = state::chunk_size;
        break;
      }

      case state::trailers: {
        std::size_t end = 0;
        const scan result = scan_section(rest, false, end);
        if (result == scan::more) return {parse_event::need_more, consumed, {}};
        if (result == scan::failed) return {parse_event::error, consumed, {}};
        trailer_views.clear();
        for (const field_offsets& f : fields_)
          trailer_views.push_back(
              {rest.substr(f.name, f.name_length), rest.substr(f.value, f.value_length)});
        finish_message();
        return {parse_event::complete, consumed + end, {}};
      }

      case state::done:
        finish_message();
        return {parse_event::complete, consumed, {}};
    }
  }
}

parse_step parser_core::finish() {
  switch (state_) {
    case state::failed:
      return {parse_event::error, 0, {}};
    case state::head:
      // Only complete empty lines (or nothing) seen since the last message: a clean close.
      if (!start_line_done_ && line_start_ == scan_) return {parse_event::closed, 0, {}};
      return fail(parse_error::truncated, 0);
    case state::close_body:
    case state::done:
      finish_message();
      return {parse_event::complete, 0, {}};
    default:
      return fail(parse_error::truncated, 0);
  }
}

parser_core::scan parser_core::scan_section(std::string_view rest, bool head, std::size_t& end) {
  const char* data = rest.data();
  for (;;) {
    const void* lf =
        scan_ < rest.size() ? std::memchr(data + scan_, '\n', rest.size() - scan_) : nullptr;
    if (lf == nullptr) {
      scan_ = rest.size();
      if (rest.size() > limits_.max_head_bytes) {
        fail(parse_error::head_too_large, 0);
        return scan::failed;
      }
      // A request line still without its end that is longer than the target limit is not
      // answered 414 before its end arrives: the verdict would depend on how the bytes were split
      // (the rest of the line decides between 414 and 400). The head limit bounds the wait.
      return scan::more;
    }
    const std::size_t pos = static_cast<const char*>(lf) - data;
    if (pos + 1 > limits_.max_head_bytes) {
      fail(parse_error::head_too_large, 0);
      return scan::failed;
    }
    if (pos == line_start_ || data[pos - 1] != '\r') {
      fail(parse_error::bare_lf, 0);
      return scan::failed;
    }
    const std::size_t at = line_start_;
    const std::size_t length = pos - 1 - line_start_;
    scan_ = line_start_ = pos + 1;
    if (std::memchr(data + at, '\r', length) != nullptr) {
      fail(parse_error::bare_cr, 0);
      return scan::failed;
    }
    if (head && !start_line_done_) {
      if (length == 0) continue;  // empty lines before a start line are ignored (RFC 9112 2.2)
      const bool ok = kind_ == message_kind::request ? parse_request_line(rest, at, length)
                                                     : parse_status_line(rest, at, length);
      if (!ok) return scan::failed;
      start_line_done_ = true;
      continue;
    }
    if (length == 0) {
      end = pos + 1;
      return scan::done;
    }
    if (fields_.size() >= limits_.max_headers) {
      fail(parse_error::too_many_headers, 0);
      return scan::failed;
    }
    if (!parse_field(rest, at, length)) return scan::failed;
  }
}

bool parser_core::parse_version(std::string_view text, version& out) {
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || !is_digit(text[5]) || text[6] != '.' ||
      !is_digit(text[7])) {
    fail(parse_error::bad_version, 0);
    return false;
  }
  if (text[5] == '1' && text[7] == '1') {
    out = version::http_1_1;
  } else if (text[5] == '1' && text[7] == '0') {
    out = version::http_1_0;
  } else {
    fail(parse_error::unsupported_version, 0);
    return false;
  }
  return true;
}

bool parser_core::parse_request_line(std::string_view rest, std::size_t at, std::size_t length) {
  const std::string_view line = rest.substr(at, length);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    fail(all_token(line) ? parse_error::bad_start_line : parse_error::bad_method, 0);
    return false;
  }
  if (!all_token(line.substr(0, sp1))) {
    fail(parse_error::bad_method, 0);
    return false;
  }
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    fail(parse_error::bad_start_line, 0);
    return false;
  }
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.size() > limits_.max_target_bytes) {
    fail(parse_error::target_too_long, 0);
    return false;
  }
  if (target.empty()) {
    fail(parse_error::bad_target, 0);
    return false;
  }
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    // '#': none of RFC 9112's four forms has a fragment (clients drop it, http_url.cpp too).
    if (u <= 0x20 || u >= 0x7f || c == '#') {
      fail(parse_error::bad_target, 0);
      return false;
    }
  }
  if (!valid_target_form(line.substr(0, sp1), target)) {
    fail(parse_error::bad_target, 0);
    return false;
  }
  if (!parse_version(line.substr(sp2 + 1), request.version)) return false;
  start_[0] = {static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(sp1)};
  start_[1] = {static_cast<std::uint32_t>(at + sp1 + 1), static_cast<std::uint32_t>(target.size())};
  return true;
}

bool parser_core::parse_status_line(std::string_view rest, std::size_t at, std::size_t length) {
  const std::string_view line = rest.substr(at, length);
  if (line.size() < 9 || line[8] != ' ') {
    fail(line.substr(0, 5) == "HTTP/" ? parse_error::bad_start_line : parse_error::bad_version, 0);
    return false;
  }
  if (!parse_version(line.substr(0, 8), response.version)) return false;
  if (line.size() < 12 || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    fail(parse_error::bad_status, 0);
    return false;
  }
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) {
    fail(parse_error::bad_status, 0);
    return false;
  }
  response.status = status;
  const std::string_view reason = line.size() > 12 ? line.substr(13) : std::string_view{};
  for (char c : reason) {
    if (!is_value(c)) {
      fail(parse_error::bad_start_line, 0);
      return false;
    }
  }
  start_[2] = {static_cast<std::uint32_t>(line.size() > 12 ? at + 13 : at + line.size()),
               static_cast<std::uint32_t>(reason.size())};
  return true;
}

bool parser_core::parse_field(std::string_view rest, std::size_t at, std::size_t length) {
  const std::string_view line = rest.substr(at, length);
  if (is_space(line[0])) {
    fail(parse_error::obs_fold, 0);
    return false;
  }
  std::size_t colon = 0;
  for (; colon < line.size(); ++colon) {
    const char c = line[colon];
    if (c == ':') break;
    if (is_token(c)) continue;
    fail(is_space(c) ? parse_error::space_before_colon : parse_error::bad_header_name, 0);
    return false;
  }
  if (colon == 0 || colon == line.size()) {
    fail(parse_error::bad_header_name, 0);
    return false;
  }
  std::size_t from = colon + 1;
  std::size_t to = line.size();
  while (from < to && is_space(line[from]))
    ++from;
  while (to > from && is_space(line[to - 1]))
    --to;
  for (std::size_t i = from; i < to; ++i) {
    if (!is_value(line[i])) {
      fail(parse_error::bad_header_value, 0);
      return false;
    }
  }
  fields_.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(colon),
                     static_cast<std::uint32_t>(at + from), static_cast<std::uint32_t>(to - from)});
  return true;
}

bool parser_core::finish_head(std::string_view rest) {
  header_views_.clear();
  for (const field_offsets& f : fields_)
    header_views_.push_back(
        {rest.substr(f.name, f.name_length), rest.substr(f.value, f.value_length)});
  trailer_views.clear();
  body_seen_ = 0;
  remaining_ = 0;
  const bool is_request = kind_ == message_kind::request;
  message_head& head = is_request ? static_cast<message_head&>(request) : response;
  head.headers = header_views_;
  if (is_request) {
    request.method = rest.substr(start_[0].at, start_[0].length);
    request.target = rest.substr(start_[1].at, start_[1].length);
    request.expect_continue = false;
  } else {
    response.reason = rest.substr(start_[2].at, start_[2].length);
  }
  reset_section();
  if (!decide_framing(head, is_request)) return false;
  switch (head.framing) {
    case body_framing::none:
      state_ = state::done;
      break;
    case body_framing::length:
      remaining_ = head.content_length;
      state_ = remaining_ == 0 ? state::done : state::length_body;
      break;
    case body_framing::chunked:
      state_ = state::chunk_size;
      break;
    case body_framing::close:
      state_ = state::close_body;
      break;
  }
  return true;
}

bool parser_core::decide_framing(message_head& head, bool is_request) {
  bool has_length = false;
  std::uint64_t length = 0;
  bool has_coding = false;
  int chunked = 0;
  bool chunked_last = false;
  bool other_coding = false;
  int hosts = 0;
  bool close = false;
  bool keep_alive = false;
  for (const header& h : head.headers) {
    if (iequals(h.name, "content-length")) {
      if (h.value.empty() || h.value.size() > 18) {  // 18 digits always fit in 63 bits
        error = parse_error::bad_content_length;
        return false;
      }
      std::uint64_t value = 0;
      for (char c : h.value) {
        if (!is_digit(c)) {
          error = parse_error::bad_content_length;
          return false;
        }
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (has_length && value != length) {
        error = parse_error::conflicting_content_length;
        return false;
      }
      has_length = true;
      length = value;
    } else if (iequals(h.name, "transfer-encoding")) {
      has_coding = true;
      for_each_element(h.value, [&](std::string_view coding) {
        if (iequals(coding, "chunked")) {
          ++chunked;
          chunked_last = true;
        } else {
          other_coding = true;
          chunked_last = false;
        }
      });
    } else if (iequals(h.name, "host")) {
      ++hosts;
    } else if (iequals(h.name, "connection")) {
      for_each_element(h.value, [&](std::string_view option) {
        if (iequals(option, "close")) close = true;
        if (iequals(option, "keep-alive")) keep_alive = true;
      });
    } else if (is_request && iequals(h.name, "expect")) {
      request.expect_continue = iequals(h.value, "100-continue");
    }
  }
  head.keep_alive = head.version == version::http_1_1 ? !close : keep_alive && !close;
  head.content_length = 0;
  head.framing = body_framing::none;

  if (has_coding) {
    parse_error e = parse_error::none;
    if (is_request && head.version == version::http_1_0)
      e = parse_error::transfer_encoding_in_http10;
    else if (has_length)
      e = parse_error::length_with_chunked;
    else if (chunked > 1)
      e = parse_error::chunked_twice;
    else if (!chunked_last)
      e = parse_error::chunked_not_last;
    else if (other_coding)
      e = parse_error::unsupported_coding;
    if (e != parse_error::none) {
      error = e;
      return false;
    }
  }
  if (is_request) {
    if (hosts > 1 || (hosts == 0 && head.version == version::http_1_1)) {
      error = hosts > 1 ? parse_error::duplicate_host : parse_error::missing_host;
      return false;
    }
  } else {
    const int status = response.status;
    const bool no_body = status < 200 || status == 204 || status == 304 || answering_head_ ||
                         (answering_connect_ && status < 300);
    if (no_body) return true;
  }
  if (has_coding) {
    head.framing = body_framing::chunked;
  } else if (has_length) {
    if (length > limits_.max_body_bytes) {
      error = parse_error::body_too_large;
      return false;
    }
    head.framing = body_framing::length;
    head.content_length = length;
  } else if (!is_request) {
    head.framing = body_framing::close;
    head.keep_alive = false;
  }
  return true;
}

void parser_core::finish_message() {
  state_ = state::head;
  start_line_done_ = false;
  reset_section();
  // A final response ends the exchange; an interim one (1xx) leaves the request's method in force.
  if (kind_ == message_kind::response && response.status >= 200) {
    answering_head_ = false;
    answering_connect_ = false;
  }
}

}  // namespace detail

// ---- the public wrappers ----

request_parser::request_parser(const parser_limits& limits)
    : core_(std::make_unique<detail::parser_core>(detail::message_kind::request, limits)) {}
request_parser::~request_parser() = default;
request_parser::request_parser(request_parser&&) noexcept = default;
request_parser& request_parser::operator=(request_parser&&) noexcept = default;
parse_step request_parser::parse(std::string_view buffer) { return core_->parse(buffer); }
parse_step request_parser::finish() { return core_->finish(); }
const request_head& request_parser::head() const noexcept { return core_->request; }
std::span<const header> request_parser::trailers() const noexcept { return core_->trailer_views; }
parse_error request_parser::error() const noexcept { return core_->error; }

response_parser::response_parser(const parser_limits& limits)
    : core_(std::make_unique<detail::parser_core>(detail::message_kind::response, limits)) {}
response_parser::~response_parser() = default;
response_parser::response_parser(response_parser&&) noexcept = default;
response_parser& response_parser::operator=(response_parser&&) noexcept = default;
void response_parser::expect_response_to(std::string_view method) {
  core_->expect_response_to(method);
}
parse_step response_parser::parse(std::string_view buffer) { return core_->parse(buffer); }
parse_step response_parser::finish() { return core_->finish(); }
const response_head& response_parser::head() const noexcept { return core_->response; }
std::span<const header> response_parser::trailers() const noexcept { return core_->trailer_views; }
parse_error response_parser::error() const noexcept { return core_->error; }

}  // namespace weft::http
