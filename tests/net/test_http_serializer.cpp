// tests/net/test_http_serializer.cpp: weft's HTTP/1.1 serializer writes heads and chunked framing
// that weft's strict parser reads back as written, and refuses input that would change a
// message's shape (header injection, two framings).
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <weft/net/http/parser.hpp>
#include <weft/net/http/serializer.hpp>

#include "support/http_driver.hpp"

namespace http = weft::http;
using weft_test::drive;

TEST_CASE("http serializer: a response with a length reads back through the parser") {
  std::string out;
  const http::header headers[] = {{"Content-Type", "text/plain"}, {"X-Empty", ""}};
  http::write_response_head(out, {200}, headers, http::framing::content_length(13));
  out += "Hello, world!";
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Empty: \r\nContent-Length: "
        "13\r\n\r\nHello, world!");
  http::response_parser parser;
  const auto result = drive(parser, {out}, false);
  REQUIRE(result.messages.size() == 1);
  CHECK(result.messages[0].body == "Hello, world!");
  CHECK(result.messages[0].headers.size() == 3);
}

TEST_CASE("http serializer: a chunked request with trailers reads back through the parser") {
  std::string out;
  const http::header headers[] = {{"Host", "example"}};
  http::write_request_head(out, {"POST", "/upload"}, headers, http::framing::chunked());
  http::write_chunk(out, "hello ");
  http::write_chunk(out, "");  // writes nothing: an empty chunk would end the body
  http::write_chunk(out, std::string(300, 'x'));
  const http::header trailers[] = {{"X-Checksum", "abc"}};
  http::write_last_chunk(out, trailers);
  CHECK(out.find("12c\r\n") != std::string::npos);  // 300 in hex
  http::request_parser parser;
  const auto result = drive(parser, {out}, true);
  REQUIRE(result.error == http::parse_error::none);
  REQUIRE(result.messages.size() == 1);
  CHECK(result.messages[0].method == "POST");
  CHECK(result.messages[0].target == "/upload");
  CHECK(result.messages[0].body == "hello " + std::string(300, 'x'));
  REQUIRE(result.messages[0].trailers.size() == 1);
  CHECK(result.messages[0].trailers[0].second == "abc");
  CHECK(result.closed);
}

TEST_CASE("http serializer: statuses get their standard reason unless one is given") {
  std::string out;
  http::write_response_head(out, {404}, {}, http::framing::content_length(0));
  CHECK(out.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  out.clear();
  http::write_response_head(out, {204}, {});
  CHECK(out == "HTTP/1.1 204 No Content\r\n\r\n");
  out.clear();
  http::write_response_head(out,
                            {.status = 200, .reason = "Fine", .version = http::version::http_1_0},
                            {}, http::framing::until_close());
  CHECK(out == "HTTP/1.0 200 Fine\r\n\r\n");
  CHECK(http::reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(http::reason_phrase(299).empty());
}

TEST_CASE("http serializer: header injection and double framing are refused and append nothing") {
  std::string out = "kept";
  auto refused = [&](auto&& write) {
    CHECK_THROWS_AS(write(), std::invalid_argument);
    CHECK(out == "kept");
  };
  const std::vector<std::vector<http::header>> bad_headers = {
      {{"X", "a\r\nInjected: yes"}},
      {{"X", "a\nb"}},
      {{"X", std::string_view("a\0b", 3)}},
      {{"Bad Name", "v"}},
      {{"", "v"}},
      {{"X:Y", "v"}},
      {{"Content-Length", "5"}},
      {{"transfer-encoding", "chunked"}},
  };
  for (const auto& headers : bad_headers) {
    refused([&] { http::write_response_head(out, {200}, headers); });
    refused([&] { http::write_request_head(out, {"GET", "/"}, headers); });
  }
  refused([&] { http::write_request_head(out, {"G T", "/"}, {}); });
  refused([&] { http::write_request_head(out, {"GET", "/a b"}, {}); });
  refused([&] { http::write_request_head(out, {"GET", "/\r\nX: y"}, {}); });
  refused([&] { http::write_request_head(out, {"GET", ""}, {}); });
  refused([&] { http::write_request_head(out, {"POST", "/"}, {}, http::framing::until_close()); });
  refused([&] { http::write_response_head(out, {99}, {}); });
  refused([&] { http::write_response_head(out, {.status = 200, .reason = "O\r\nK"}, {}); });
  refused([&] { http::write_response_head(out, {204}, {}, http::framing::content_length(1)); });
  refused([&] { http::write_response_head(out, {101}, {}, http::framing::chunked()); });
  const http::header framing_trailer[] = {{"Content-Length", "1"}};
  refused([&] { http::write_last_chunk(out, framing_trailer); });
}
