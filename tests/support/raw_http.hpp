// tests/support/raw_http.hpp: a raw HTTP/1.1 client for the server tests: it writes whatever
// bytes a test gives it (well-formed or hostile) over a plain weft::tcp_stream and reads the
// responses back with weft's response parser, so the server is tested without weft's HTTP
// client.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

struct http_reply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;

  [[nodiscard]] std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (weft::http::iequals(k, name)) return v;
    return {};
  }
};

class raw_client {
 public:
  static weft::task<raw_client> connect(std::uint16_t port) {
    raw_client c;
    c.stream_ = co_await weft::tcp_stream::connect("127.0.0.1", port);
    c.stream_.set_nodelay(true);
    co_return c;
  }

  weft::task<void> send(std::string data) { co_await stream_.write_all(data); }

  // The next response (an interim 1xx too), or nullopt if the server closed first. Throws
  // weft::timeout_error after `limit`.
  weft::task<std::optional<http_reply>> read(
      std::string method = "GET",
      std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    co_return co_await weft::timeout(limit, read_reply(std::move(method)));
  }

  // True if the server closes the connection (end of stream or reset) within `limit`, dropping
  // whatever it still sends.
  weft::task<bool> closed_within(std::chrono::milliseconds limit) {
    try {
      co_await weft::timeout(limit, read_to_end());
      co_return true;
    } catch (const weft::timeout_error&) {
      co_return false;
    }
  }

  weft::tcp_stream& stream() { return stream_; }
  void close() { stream_.close(); }

 private:
  weft::task<void> read_to_end() {
    std::array<char, 16384> scratch{};
    try {
      while (co_await stream_.read_some(scratch) > 0) {
      }
    } catch (const weft::cancelled_error&) {
      throw;
    } catch (const std::exception&) {
      // A reset also ends the connection.
    }
  }

  weft::task<std::optional<http_reply>> read_reply(std::string method) {
    http_reply reply;
    bool have_head = false;
    parser_.expect_response_to(method);
    for (;;) {
      const weft::http::parse_step step = parser_.parse(buffer_);
      switch (step.event) {
        case weft::http::parse_event::need_more: {
          buffer_.erase(0, step.consumed);
          std::array<char, 16384> scratch{};
          std::size_t n = 0;
          try {
            n = co_await stream_.read_some(scratch);
          } catch (const weft::cancelled_error&) {
            throw;
          } catch (const std::exception&) {
            n = 0;  // reset
          }
          if (n == 0) {
            const auto end = parser_.finish();
            if (end.event == weft::http::parse_event::complete && have_head) co_return reply;
            co_return std::nullopt;
          }
          buffer_.append(scratch.data(), n);
          break;
        }
        case weft::http::parse_event::head: {
          const auto& h = parser_.head();
          reply.status = h.status;
          reply.keep_alive = h.keep_alive;
          for (const auto& f : h.headers)
            reply.headers.emplace_back(std::string(f.name), std::string(f.value));
          have_head = true;
          buffer_.erase(0, step.consumed);
          break;
        }
        case weft::http::parse_event::body:
          reply.body.append(step.data);
          buffer_.erase(0, step.consumed);
          break;
        case weft::http::parse_event::complete:
          buffer_.erase(0, step.consumed);
          co_return reply;
        case weft::http::parse_event::error:
          throw weft::http::bad_message(parser_.error());
        case weft::http::parse_event::closed:
          co_return std::nullopt;
      }
    }
  }

  weft::tcp_stream stream_;
  std::string buffer_;
  weft::http::response_parser parser_{weft::http::parser_limits{.max_body_bytes = 1ull << 40}};
};

}  // namespace weft_test
