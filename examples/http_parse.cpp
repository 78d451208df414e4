// examples/http_parse.cpp: weft's HTTP/1.1 parser and serializer without sockets, the layer the
// server and client stand on (those come next). Docs: docs/patterns/http.md, "Parsing".
//
//   Python (h11, a sans-I/O parser)               weft
//   conn = h11.Connection(h11.SERVER)             weft::http::request_parser parser;
//   conn.receive_data(data)                       buffer += data;
//   event = conn.next_event()                     auto step = parser.parse(buffer);
//   h11.NEED_DATA / Request / Data /              parse_event::need_more / head / body /
//     EndOfMessage                                  complete
//   h11.RemoteProtocolError                       parse_event::error, parser.error()
//   conn.send(h11.Response(...))                  weft::http::write_response_head(out, ...)
//
// Three pipelined requests arrive in uneven pieces; the parser reports each head, the chunked
// body of the second, and the end of each message, and a response is written for each. Then a
// request-smuggling attempt (Content-Length together with Transfer-Encoding) is rejected with the
// status to answer, 400, and nothing after it is parsed.

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::http_parse {

namespace {

namespace http = weft::http;

// One connection's state: the parser, the bytes not yet consumed, the responses to send, and
// what the request in progress has shown so far.
struct connection {
  http::request_parser parser;
  std::string buffer;
  std::string out;
  std::string target;  // copied from the head: the bytes it points into are dropped below
  std::string body;
  std::vector<std::string> log;

  // Parses whatever arrived so far; writes a response for every complete request. Returns false
  // on a parse error, after writing the error response.
  bool serve() {
    for (;;) {
      const http::parse_step step = parser.parse(buffer);
      switch (step.event) {
        case http::parse_event::need_more:
          break;
        case http::parse_event::head:
          target = parser.head().target;
          log.push_back(std::string(parser.head().method) + " " + target);
          break;
        case http::parse_event::body:
          body += step.data;
          break;
        case http::parse_event::complete: {
          const std::string reply =
              "you sent " + std::to_string(body.size()) + " bytes to " + target;
          const http::header headers[] = {{"Content-Type", "text/plain"}};
          http::write_response_head(out, {200}, headers,
                                    http::framing::content_length(reply.size()));
          out += reply;
          body.clear();
          break;
        }
        case http::parse_event::error:
        case http::parse_event::closed: {
          const int status = http::status_of(parser.error());
          const http::header headers[] = {{"Connection", "close"}};
          http::write_response_head(out, {status}, headers, http::framing::content_length(0));
          log.push_back("rejected: " + std::string(http::describe(parser.error())));
          return false;
        }
      }
      buffer.erase(0, step.consumed);  // done with the views into these bytes
      if (step.event == http::parse_event::need_more) return true;
    }
  }
};

}  // namespace

int run() {
  bool ok = true;
  {
    const std::string wire =
        "GET /status HTTP/1.1\r\nHost: example\r\n\r\n"
        "POST /upload HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
        "GET /bye HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n";
    connection c;
    for (std::size_t at = 0; at < wire.size(); at += 17) {  // the network's pieces: 17 bytes each
      c.buffer.append(wire, at, 17);
      ok &= check(c.serve(), "the pipelined requests parse");
    }
    for (const auto& line : c.log)
      std::printf("  %s\n", line.c_str());
    ok &= check(c.log.size() == 3 && c.log[1] == "POST /upload", "three requests in order");
    ok &= check(c.out.find("you sent 12 bytes to /upload") != std::string::npos,
                "the chunked body arrived whole");
    ok &= check(!c.parser.head().keep_alive, "the last request asked to close the connection");
  }
  {
    const std::string smuggle =
        "POST / HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\nTransfer-Encoding: "
        "chunked\r\n\r\n"
        "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: example\r\n\r\n";
    connection c;
    c.buffer = smuggle;
    ok &= check(!c.serve(), "the smuggling attempt is rejected");
    std::printf("  %s\n  answered: %s", c.log.back().c_str(),
                c.out.substr(0, c.out.find('\n') + 1).c_str());
    ok &= check(c.out.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0, "with 400");
    ok &= check(c.log.size() == 1, "and /admin is never seen");
  }
  return ok ? 0 : 1;
}

}  // namespace examples::http_parse

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::http_parse::run(); }
#endif
