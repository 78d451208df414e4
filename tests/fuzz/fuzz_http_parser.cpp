// tests/fuzz/fuzz_http_parser.cpp: a libFuzzer target for weft's HTTP/1.1 parser, checked against
// Debian's libhttp-parser as an oracle (an oracle only: it is never linked into libweft).
//
// Input: one mode byte, then the bytes of the connection.
//   bit 0     0: requests, 1: responses
//   bit 1     small limits (head 512, 8 headers, target 64, body 256, chunk line 32), so the
//             limit paths are reached too
//   bits 2-4  responses: response i answers a HEAD request when bit 2 + i % 3 is set, else GET
//   bits 5-7  where the second feed splits the input, in eighths
//
// What it checks, on every input:
//   1. Nothing crashes, leaks or touches memory it should not (ASan + UBSan). The driver erases
//      the consumed bytes after every call, so a view the parser should not have handed out
//      points into freed memory.
//   2. The outcome (messages, error, clean end) is the same when the input is fed whole, split in
//      two at the mode's point, and one byte at a time.
//   3. Every message weft completes, http-parser completes too, with the same method, target,
//      status, header fields (name and value), body, trailers and keep-alive, until one of the
//      accepted differences below makes the two parsers lose step (then the rest is not compared).
//
// Differences that are expected: weft is stricter than http-parser in many places (bare LF, obs-
// fold, whitespace before the colon, spaces in targets, versions other than 1.0 and 1.1, Host,
// Transfer-Encoding codings, chunk-size whitespace, limits...). Those are messages http-parser
// accepts and weft rejects, and they need no exception: weft's rejection ends the comparison.
// The opposite direction, weft accepting what http-parser rejects or reads differently, is a
// finding unless it is one of these classes, where weft follows RFC 9112 and http-parser does not:
//   a. a method that is a valid token but not in http-parser's fixed table (weft accepts any
//      token method, as RFC 9110 9.1 allows);
//   b. Content-Length repeated with the same value (RFC 9110 8.6 allows accepting it;
//      http-parser rejects every repeat); Content-Length or Transfer-Encoding in the trailers,
//      which weft reports without interpreting (RFC 9110 6.5.1: framing fields are not allowed
//      there and must not be applied) and http-parser checks and applies like the head's;
//   c. an upgrade (CONNECT, or Upgrade with Connection: upgrade): http-parser stops at the head,
//      weft reports the message and leaves the decision to the caller;
//   d. Transfer-Encoding whose list has empty elements or is split over several field lines
//      (RFC 9110 5.6.1 and 5.3: a list; http-parser only looks at the last line), and a
//      Connection list with empty elements (", keep-alive": http-parser misses the option);
//   e. obs-text (bytes 0x80-0xFF) in a header value or reason phrase, and a reason phrase with
//      characters http-parser does not take; header values: http-parser keeps trailing whitespace
//      that weft (RFC 9110 5.5) strips, so values are compared after stripping it;
//   f. data after a message that does not keep the connection alive (a server closes there);
//   g. a field whose name begins with "Transfer-Encoding" but is longer ("Transfer-Encodingx"):
//      http-parser's name matcher counts it as a Transfer-Encoding (an oracle bug, found here).
//   h. an absolute-form target whose scheme has a digit, '+', '-' or '.' after its first letter
//      ("h2c://x"): RFC 3986 3.1 allows them, http-parser's URL parser takes letters only (found
//      by CI's fuzzing run on 2026-12-06: the corpus keeps that input), and an authority with
//      '~', a percent escape or a sub-delim ("http://a!b/"), which RFC 3986 3.2.2 allows in a
//      reg-name and http-parser takes in userinfo only. weft checks the authority's syntax
//      itself (CI's fuzzing found it accepting "S://|" on 2026-12-07; test_http_parser pins it).
//   i. a tab where RFC 9110 allows optional whitespace around a framing value: "Content-Length:
//      9<HTAB>" (RFC 9110 5.5 strips trailing OWS, spaces and tabs; http-parser's length reader
//      allows trailing spaces only and fails with HPE_INVALID_CONTENT_LENGTH) and "Connection:
//      keep-alive<HTAB>" (http-parser's option matcher then misses the option and an HTTP/1.0
//      message is not kept alive). Both found by CI's fuzzing runs on 2026-12-08; the corpus
//      keeps the inputs.
#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <weft/net/http/parser.hpp>

#include "support/http_driver.hpp"

namespace {

using weft_test::http_message;
using weft_test::http_outcome;

struct oracle_message {
  std::string method;
  std::string url;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> trailers;
  std::string body;
  bool keep_alive = false;
  bool upgrade = false;
};

struct oracle {
  http_parser parser{};
  std::vector<oracle_message> messages;
  oracle_message current;
  bool in_trailers = false;
  bool last_was_value = false;
  std::vector<std::string> methods;
  std::size_t finals = 0;

  std::vector<std::pair<std::string, std::string>>& fields() {
    return in_trailers ? current.trailers : current.headers;
  }
};

oracle& self(http_parser* p) { return *static_cast<oracle*>(p->data); }

int on_message_begin(http_parser* p) {
  oracle& o = self(p);
  o.current = {};
  o.in_trailers = false;
  o.last_was_value = false;
  return 0;
}
int on_url(http_parser* p, const char* at, std::size_t n) {
  self(p).current.url.append(at, n);
  return 0;
}
int on_header_field(http_parser* p, const char* at, std::size_t n) {
  oracle& o = self(p);
  if (o.last_was_value || o.fields().empty()) o.fields().emplace_back();
  o.fields().back().first.append(at, n);
  o.last_was_value = false;
  return 0;
}
int on_header_value(http_parser* p, const char* at, std::size_t n) {
  oracle& o = self(p);
  if (o.fields().empty()) o.fields().emplace_back();
  o.fields().back().second.append(at, n);
  o.last_was_value = true;
  return 0;
}
int on_headers_complete(http_parser* p) {
  oracle& o = self(p);
  o.in_trailers = true;
  o.last_was_value = false;
  o.current.method =
      p->type == HTTP_REQUEST ? http_method_str(static_cast<http_method>(p->method)) : "";
  o.current.status = static_cast<int>(p->status_code);
  o.current.keep_alive = http_should_keep_alive(p) != 0;
  o.current.upgrade = p->upgrade != 0;
  if (p->type == HTTP_RESPONSE) {
    const std::string& method = o.finals < o.methods.size() ? o.methods[o.finals] : "GET";
    // No body, whatever the headers say. http-parser itself reads a Content-Length body after a
    // 204 or 304; its users must skip it, as a client would.
    const int status = o.current.status;
    if (method == "HEAD" || status < 200 || status == 204 || status == 304) {
      // What returning 1 does anyway, set first so that keep-alive sees a message without body.
      p->flags |= F_SKIPBODY;
      o.current.keep_alive = http_should_keep_alive(p) != 0;
      return 1;
    }
  }
  return 0;
}
int on_body(http_parser* p, const char* at, std::size_t n) {
  self(p).current.body.append(at, n);
  return 0;
}
int on_message_complete(http_parser* p) {
  oracle& o = self(p);
  // keep_alive stays as the head decided it: http-parser would also apply a Connection field
  // from the trailers, which RFC 9110 6.5.1 forbids using.
  if (o.current.status >= 200) ++o.finals;
  o.messages.push_back(std::move(o.current));
  o.current = {};
  return 0;
}

std::string strip_trailing_space(std::string value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.pop_back();
  return value;
}

[[noreturn]] void finding(const char* what, std::size_t message) {
  std::fprintf(stderr, "fuzz_http_parser: %s (message %zu)\n", what, message);
  std::abort();
}

// Whether a comma-separated list has an empty element ("a,,b", ", a", "a ,").
bool has_empty_element(std::string_view list) {
  bool empty = true;
  for (char c : list) {
    if (c == ',') {
      if (empty) return true;
      empty = true;
    } else if (c != ' ' && c != '\t') {
      empty = false;
    }
  }
  return empty && !list.empty();
}

// Whether message `m` (which weft accepted) falls into one of the accepted classes of difference
// that make http-parser lose step; see the list at the top.
bool known_difference(const http_message& m, bool request) {
  std::size_t lengths = 0;
  std::size_t codings = 0;
  bool connection_upgrade = false;
  bool upgrade = false;
  for (const auto& [name, value] : m.trailers)  // class b
    if (weft::http::iequals(name, "content-length") ||
        weft::http::iequals(name, "transfer-encoding"))
      return true;
  for (const auto& [name, value] : m.headers) {
    if (weft::http::iequals(name, "content-length")) ++lengths;
    if (weft::http::iequals(name, "transfer-encoding")) {
      ++codings;
      if (value.find(',') != std::string::npos) return true;  // class d
    }
    if (name.size() > 17 && weft::http::iequals(name.substr(0, 17), "transfer-encoding"))
      return true;  // class g
    if (weft::http::iequals(name, "upgrade")) upgrade = true;
    if (weft::http::iequals(name, "connection")) {
      if (value.find("pgrade") != std::string::npos) connection_upgrade = true;
      if (has_empty_element(value)) return true;  // class d
    }
    for (char c : value)
      if (static_cast<unsigned char>(c) >= 0x80) return true;  // class e
  }
  for (char c : m.reason)
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\t') return true;  // class e
  if (lengths > 1 || codings > 1) return true;                            // classes b, d
  if (upgrade || (request && m.method == "CONNECT") || connection_upgrade) return true;  // c
  if (request && !m.target.empty() && m.target[0] != '/' && m.target != "*") {           // class h
    const std::size_t colon = m.target.find(':');
    for (std::size_t i = 0; colon != std::string::npos && i < colon; ++i) {
      const char c = m.target[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return true;
    }
    if (colon != std::string::npos && m.target.compare(colon, 3, "://") == 0) {
      const std::string_view rest = std::string_view(m.target).substr(colon + 3);
      for (char c : rest.substr(0, rest.find_first_of("/?")))
        if (std::string_view("~%!$&'()*+,;=").find(c) != std::string_view::npos) return true;
    }
  }
  if (request) {
    bool known = false;
    for (int i = 0; i <= HTTP_SOURCE; ++i)
      if (m.method == http_method_str(static_cast<http_method>(i))) known = true;
    if (!known) return true;  // class a
  }
  return false;
}

// Whether `m` has a Content-Length field whose value (trailing whitespace stripped) is digits only.
bool digits_only_length(const http_message& m) {
  for (const auto& [name, value] : m.headers) {
    if (!weft::http::iequals(name, "content-length") || value.empty()) continue;
    bool digits = true;
    for (char c : value)
      digits = digits && c >= '0' && c <= '9';
    if (digits) return true;
  }
  return false;
}

void compare_with_oracle(const http_outcome& weft_result, std::string_view input, bool request,
                         const std::vector<std::string>& methods) {
  static const http_parser_settings settings = [] {
    http_parser_settings s{};
    s.on_message_begin = on_message_begin;
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  oracle o;
  o.methods = methods;
  http_parser_init(&o.parser, request ? HTTP_REQUEST : HTTP_RESPONSE);
  o.parser.data = &o;
  const std::size_t used = http_parser_execute(&o.parser, &settings, input.data(), input.size());
  if (used == input.size() && HTTP_PARSER_ERRNO(&o.parser) == HPE_OK && !o.parser.upgrade)
    http_parser_execute(&o.parser, &settings, nullptr, 0);  // the end of the stream

  for (std::size_t i = 0; i < weft_result.messages.size(); ++i) {
    const http_message& w = weft_result.messages[i];
    if (known_difference(w, request)) return;
    if (i == o.messages.size() && HTTP_PARSER_ERRNO(&o.parser) == HPE_INVALID_CONTENT_LENGTH &&
        digits_only_length(w)) {
      return;  // class i: weft validated the length's digits, so the difference is the whitespace
    }
    if (i >= o.messages.size()) finding("weft accepted a message http-parser did not complete", i);
    const oracle_message& h = o.messages[i];
    if (request) {
      if (w.method != h.method) finding("methods differ", i);
      if (w.target != h.url) finding("targets differ", i);
    } else if (w.status != h.status) {
      finding("statuses differ", i);
    }
    if (w.headers.size() != h.headers.size()) finding("header counts differ", i);
    for (std::size_t k = 0; k < w.headers.size(); ++k) {
      if (w.headers[k].first != h.headers[k].first) finding("header names differ", i);
      if (w.headers[k].second != strip_trailing_space(h.headers[k].second))
        finding("header values differ", i);
    }
    if (w.body != h.body) finding("bodies differ", i);
    if (w.trailers.size() != h.trailers.size()) finding("trailer counts differ", i);
    for (std::size_t k = 0; k < w.trailers.size(); ++k) {
      if (w.trailers[k].first != h.trailers[k].first ||
          w.trailers[k].second != strip_trailing_space(h.trailers[k].second))
        finding("trailers differ", i);
    }
    if (w.keep_alive != h.keep_alive) {
      for (const auto& [name, value] : h.headers) {  // class i: a Connection option before a tab
        if (weft::http::iequals(name, "connection") && value.find('\t') != std::string::npos)
          return;
      }
      finding("keep-alive differs", i);
    }
    if (!w.keep_alive) return;  // class f
  }
}

template <class Parser>
http_outcome run(const weft::http::parser_limits& limits,
                 const std::vector<std::string_view>& pieces,
                 const std::vector<std::string>& methods) {
  Parser parser(limits);
  return weft_test::drive(parser, pieces, true, methods);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool request = (mode & 1) == 0;
  weft::http::parser_limits limits;
  if (mode & 2) {
    limits.max_head_bytes = 512;
    limits.max_headers = 8;
    limits.max_target_bytes = 64;
    limits.max_body_bytes = 256;
    limits.max_chunk_line_bytes = 32;
  }
  std::vector<std::string> methods;
  for (int i = 0; i < 12; ++i)
    methods.push_back((mode >> (2 + i % 3)) & 1 ? "HEAD" : "GET");
  const std::size_t cut = input.size() * (mode >> 5) / 8;

  auto parse = [&](const std::vector<std::string_view>& pieces) {
    return request ? run<weft::http::request_parser>(limits, pieces, methods)
                   : run<weft::http::response_parser>(limits, pieces, methods);
  };
  const http_outcome whole = parse({input});
  if (!(parse({input.substr(0, cut), input.substr(cut)}) == whole))
    finding("a split changed the outcome", 0);
  if (!(parse(weft_test::pieces_of(input, 1)) == whole))
    finding("feeding byte by byte changed the outcome", 0);
  compare_with_oracle(whole, input, request, methods);
  return 0;
}
