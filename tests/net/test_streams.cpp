// tests/net/test_streams.cpp: asyncio's streams on weft: open_connection and start_server, the
// reader's reads and its limit, the writer's flow control against a client that never reads,
// cancellation in the middle of a line, and the server's graceful shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// Answers each line with the line in brackets, until the client half-closes.
weft::task<void> bracket_lines(weft::stream_reader reader, weft::stream_writer writer) {
  for (;;) {
    std::string line = co_await reader.read_line();
    if (line.empty()) break;
    std::string answer(1, '[');
    answer.append(line, 0, line.size() - 1).append("]\n");
    writer.write(answer);
    co_await writer.drain();
  }
  writer.close();
  co_await writer.wait_closed();
}

// A reader over one end of a connected pair, and the raw other end.
struct stream_pair {
  weft::stream_reader reader;
  weft::tcp_stream other;
};

weft::task<stream_pair> connected_reader(std::size_t limit) {
  auto listener = weft::tcp_listener::bind(weft_test::loopback());
  auto accepted = weft::spawn([](weft::tcp_listener& l) { return l.accept(); }, std::ref(listener));
  auto client = co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
  auto server_side = co_await accepted;
  co_return stream_pair{
      weft::stream_reader(std::make_shared<weft::tcp_stream>(std::move(client)), limit),
      std::move(server_side)};
}

}  // namespace

TEST_CASE("streams: open_connection talks to start_server line by line") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto server = co_await weft::start_server(bracket_lines, "127.0.0.1", 0);
    CHECK(server.port() != 0);
    CHECK(server.is_serving());
    auto [reader, writer] = co_await weft::open_connection("127.0.0.1", server.port());
    for (const char* word : {"alpha", "beta", "gamma"}) {
      writer.write(std::string(word) + "\n");
      co_await writer.drain();
      std::string expected(1, '[');
      expected.append(word).append("]\n");
      CHECK(co_await reader.read_line() == expected);
    }
    writer.write_eof();
    CHECK(co_await reader.read_line() == "");  // the server closed after our half-close
    CHECK(reader.at_eof());
    server.close();
    CHECK_FALSE(server.is_serving());
    co_await server.wait_closed();
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("streams: read read_exactly and read_until take from the buffer in order") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto [reader, other] = co_await connected_reader(weft::default_stream_limit);
    co_await other.write_all("HEAD 12|body:abcdefgh--tail");
    other.shutdown_write();
    CHECK(co_await reader.read_until("|") == "HEAD 12|");
    CHECK(co_await reader.read_exactly(5) == "body:");
    CHECK(co_await reader.read(3) == "abc");
    try {
      (void)co_await reader.read_exactly(100);
      FAIL("read_exactly returned at the end of the stream");
    } catch (const weft::incomplete_read_error& e) {
      CHECK(e.partial() == "defgh--tail");
      CHECK(e.expected() == 100);
    }
    CHECK(co_await reader.read(10) == "");
    CHECK(reader.at_eof());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "streams: a line longer than the limit is stream_limit_error and reading goes on after it") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto [reader, other] = co_await connected_reader(1000);
    co_await other.write_all(std::string(5000, 'x') + "\nshort\n");
    other.shutdown_write();
    CHECK_THROWS_AS((void)co_await reader.read_line(), weft::stream_limit_error);
    CHECK(reader.buffered() <= 1000 + 16 * 1024 + 5000);  // bounded, never the whole stream
    // The overlong line is dropped piece by piece; the short line after it survives.
    std::string line;
    for (int i = 0; i < 10; ++i) {
      try {
        line = co_await reader.read_line();
        break;
      } catch (const weft::stream_limit_error&) {
      }
    }
    if (line.find('x') != std::string::npos) line = co_await reader.read_line();
    CHECK(line == "short\n");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("streams: read_until leaves the data in the buffer when the limit is hit") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto [reader, other] = co_await connected_reader(10);
    co_await other.write_all("0123456789abcdef;");
    other.shutdown_write();
    try {
      (void)co_await reader.read_until(";");
      FAIL("read_until ignored its limit");
    } catch (const weft::stream_limit_error& e) {
      CHECK(e.consumed() > 10);
    }
    CHECK(co_await reader.read_exactly(17) == "0123456789abcdef;");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("streams: a read_line cancelled half way loses no byte") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto [reader, other] = co_await connected_reader(weft::default_stream_limit);
    co_await other.write_all("first ha");
    auto pending =
        weft::spawn([](weft::stream_reader& r) { return r.read_line(); }, std::ref(reader));
    co_await weft::sleep(50ms);  // the reader took "first ha" and waits for the rest
    pending.cancel();
    CHECK_THROWS_AS((void)co_await pending, weft::cancelled_error);
    CHECK(reader.buffered() == 8);
    co_await other.write_all("lf\nsecond\n");
    CHECK(co_await reader.read_line() == "first half\n");
    CHECK(co_await reader.read_line() == "second\n");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("streams: a client that never reads blocks the server in drain with bounded memory") {
  weft_test::watchdog dog(30s);
  struct observed {
    std::atomic<std::size_t> written{0};
    std::atomic<std::size_t> max_buffered{0};
    std::atomic<bool> failed{false};
  };
  auto main_task = [](observed& seen) -> weft::task<void> {
    constexpr std::size_t chunk = 16 * 1024;
    auto handler = [&seen](weft::stream_reader, weft::stream_writer writer) -> weft::task<void> {
      const std::string data(chunk, 'd');
      try {
        for (;;) {
          writer.write(data);
          seen.written += chunk;
          std::size_t b = writer.buffered();
          std::size_t m = seen.max_buffered.load();
          while (b > m && !seen.max_buffered.compare_exchange_weak(m, b)) {
          }
          co_await writer.drain();
        }
      } catch (const weft::net_error&) {
        seen.failed = true;  // the client went away
      }
    };
    auto server = co_await weft::start_server(handler, "127.0.0.1", 0);
    auto client = co_await weft::tcp_stream::connect("127.0.0.1", server.port());
    co_await weft::sleep(300ms);
    const std::size_t stalled_at = seen.written.load();
    co_await weft::sleep(300ms);
    CHECK(seen.written.load() == stalled_at);  // blocked in drain: no more writes
    // Kernel buffers hold a few MB at most; the writer's own buffer stays under high + a chunk.
    CHECK(seen.max_buffered.load() <= 64 * 1024 + chunk);
    CHECK(stalled_at < 64 * 1024 * 1024);
    const linger reset{1, 0};
    ::setsockopt(client.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    client.close();  // the server's drain now fails
    server.close();
    co_await server.wait_closed();
    CHECK(seen.failed.load());
  };
  observed seen;
  weft::run(main_task(seen), {.worker_threads = 2});
}

TEST_CASE("streams: wait_closed waits for every running handler after close") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    std::atomic<int> finished{0};
    auto handler = [&finished](weft::stream_reader reader,
                               weft::stream_writer) -> weft::task<void> {
      (void)co_await reader.read_line();
      co_await weft::sleep(200ms);
      ++finished;
    };
    auto server = co_await weft::start_server(handler, "127.0.0.1", 0);
    auto [r1, w1] = co_await weft::open_connection("127.0.0.1", server.port());
    auto [r2, w2] = co_await weft::open_connection("127.0.0.1", server.port());
    w1.write("go\n");
    w2.write("go\n");
    co_await weft::sleep(50ms);
    server.close();
    // Closed: new connections are refused.
    CHECK_THROWS_AS((void)co_await weft::tcp_stream::connect("127.0.0.1", server.port()),
                    weft::connection_refused);
    CHECK(finished.load() == 0);
    co_await server.wait_closed();
    CHECK(finished.load() == 2);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("streams: an exception escaping a handler is reported through the log hook") {
  weft_test::watchdog dog(20s);
  std::mutex log_mutex;
  std::vector<std::string> reports;
  auto main_task = []() -> weft::task<void> {
    auto handler = [](weft::stream_reader, weft::stream_writer) -> weft::task<void> {
      throw std::runtime_error("handler broke");
      co_return;
    };
    auto server = co_await weft::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await weft::open_connection("127.0.0.1", server.port());
    CHECK(co_await reader.read_all() == "");  // the handler's connection closes
    server.close();
    co_await server.wait_closed();
  };
  weft::run(main_task(), {.worker_threads = 2, .log = [&](std::string_view m) {
                            std::lock_guard lock(log_mutex);
                            reports.emplace_back(m);
                          }});
  std::lock_guard lock(log_mutex);
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].find("handler broke") != std::string::npos);
}
