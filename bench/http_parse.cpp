// bench/http_parse.cpp: parsing a typical browser request (request line and ten header fields,
// 478 bytes) n times on one keep-alive connection, single-threaded; the time per request.
// Peer: Debian's libhttp-parser (the oracle of the fuzz test) on the same bytes in the same
// process, with callbacks that record what weft's parser reports: the method, the target and a
// view of every header name and value.
#include <http_parser.h>

#include <string>
#include <string_view>

#include <weft/net/http/parser.hpp>

#include "harness.hpp"

namespace {

const std::string request =
    "GET /articles/2024/weft-coroutines?page=2&sort=recent HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=4f2a9c1e7b; theme=dark\r\n"
    "Cache-Control: max-age=0\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Referer: https://www.example.com/articles\r\n"
    "\r\n";

constexpr std::size_t expected_headers = 10;

long weft_parse(weft::http::request_parser& parser, long n) {
  long headers = 0;
  for (long i = 0; i < n; ++i) {
    const auto head = parser.parse(request);
    if (head.event != weft::http::parse_event::head) return -1;
    headers += static_cast<long>(parser.head().headers.size());
    const auto done = parser.parse(std::string_view(request).substr(head.consumed));
    if (done.event != weft::http::parse_event::complete) return -1;
  }
  return headers;
}

// What a server built on http-parser keeps: views of the target and of each field.
struct recorded {
  std::string_view url;
  std::string_view names[64];
  std::string_view values[64];
  std::size_t fields = 0;
  long headers = 0;
  long messages = 0;
};

int on_url(http_parser* p, const char* at, std::size_t n) {
  static_cast<recorded*>(p->data)->url = {at, n};
  return 0;
}
int on_header_field(http_parser* p, const char* at, std::size_t n) {
  auto* r = static_cast<recorded*>(p->data);
  if (r->fields < 64) r->names[r->fields] = {at, n};
  return 0;
}
int on_header_value(http_parser* p, const char* at, std::size_t n) {
  auto* r = static_cast<recorded*>(p->data);
  if (r->fields < 64) r->values[r->fields++] = {at, n};
  return 0;
}
int on_message_complete(http_parser* p) {
  auto* r = static_cast<recorded*>(p->data);
  r->headers += static_cast<long>(r->fields);
  r->fields = 0;
  ++r->messages;
  return 0;
}

long http_parser_parse(http_parser& parser, const http_parser_settings& settings, long n) {
  auto* r = static_cast<recorded*>(parser.data);
  r->headers = 0;
  r->messages = 0;
  for (long i = 0; i < n; ++i) {
    const std::size_t used =
        http_parser_execute(&parser, &settings, request.data(), request.size());
    if (used != request.size() || HTTP_PARSER_ERRNO(&parser) != HPE_OK) return -1;
  }
  return r->messages == n ? r->headers : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  if (opts.system == "weft") {
    weft::http::request_parser parser;
    bench::run_timed(opts, [&] {
      bench::check(weft_parse(parser, n) == n * static_cast<long>(expected_headers),
                   "weft parsed every request with its ten headers");
    });
  } else if (opts.system == "http_parser") {
    http_parser_settings settings{};
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_message_complete = on_message_complete;
    recorded record;
    http_parser parser{};
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &record;
    bench::run_timed(opts, [&] {
      bench::check(
          http_parser_parse(parser, settings, n) == n * static_cast<long>(expected_headers),
          "http-parser parsed every request with its ten headers");
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end("\"request_bytes\":" + std::to_string(request.size()));
}
