// tests/test_io_source.cpp: weft::io_source: a task waiting for readability or writability of a
// non-blocking descriptor is woken when the peer acts, readiness that arrives while nobody waits is
// remembered, and hang-ups count as readiness.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "support/sockets.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using weft_test::read_some;
using weft_test::socket_pair;

}  // namespace

TEST_CASE("io_source: a reader waiting for data is woken when the peer writes") {
  weft_test::watchdog dog(10s);
  socket_pair sp;
  auto main_task = [](int reader_fd, int writer_fd) -> weft::task<std::string> {
    weft::io_source src(reader_fd);
    auto reader = weft::spawn(read_some(src));
    co_await weft::sleep(20ms);  // the reader is waiting by now
    CHECK_FALSE(reader.done());
    CHECK(::write(writer_fd, "ping", 4) == 4);
    co_return co_await reader;
  };
  CHECK(weft::run(main_task(sp.fds[0], sp.fds[1]), {.worker_threads = 2}) == "ping");
}

TEST_CASE("io_source: a write from another thread wakes the reader") {
  weft_test::watchdog dog(10s);
  socket_pair sp;
  weft::runtime rt({.worker_threads = 2});
  weft::io_source src(rt, sp.fds[0]);
  std::thread writer([fd = sp.fds[1]] {
    std::this_thread::sleep_for(30ms);
    CHECK(::write(fd, "hello", 5) == 5);
  });
  CHECK(rt.block_on(read_some(src)) == "hello");
  writer.join();
}

TEST_CASE("io_source: readiness that arrives while nobody waits is remembered") {
  weft_test::watchdog dog(10s);
  socket_pair sp;
  auto main_task = [](int reader_fd, int writer_fd) -> weft::task<bool> {
    weft::io_source src(reader_fd);
    CHECK(::write(writer_fd, "x", 1) == 1);
    co_await weft::sleep(20ms);  // the edge reaches the poller while nobody waits
    // The wait returns at once (no further edge will come), then the read succeeds.
    co_await src.readable();
    char c = 0;
    co_return ::read(reader_fd, &c, 1) == 1 && c == 'x';
  };
  CHECK(weft::run(main_task(sp.fds[0], sp.fds[1]), {.worker_threads = 2}));
}

TEST_CASE("io_source: a writer blocked on a full buffer is woken when the peer reads") {
  weft_test::watchdog dog(20s);
  socket_pair sp;
  int size = 4096;
  ::setsockopt(sp.fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  auto main_task = [](int writer_fd, int reader_fd) -> weft::task<std::size_t> {
    weft::io_source src(writer_fd);
    std::atomic<std::size_t> written{0};
    auto writer = weft::spawn(
        [](weft::io_source& s, std::atomic<std::size_t>& w) -> weft::task<> {
          std::array<char, 1024> chunk{};
          chunk.fill('a');
          std::size_t waits = 0;
          while (w.load() < 1'000'000) {
            const ssize_t n = ::write(s.fd(), chunk.data(), chunk.size());
            if (n > 0) {
              w += static_cast<std::size_t>(n);
              continue;
            }
            REQUIRE(errno == EAGAIN);
            ++waits;
            co_await s.writable();
          }
          CHECK(waits > 0);
        },
        std::ref(src), std::ref(written));
    // Drain slowly from this task; the writer can only make progress through writable().
    weft::io_source rsrc(reader_fd);
    std::size_t total = 0;
    std::array<char, 8192> buffer{};
    while (total < 1'000'000) {
      const ssize_t n = ::read(reader_fd, buffer.data(), buffer.size());
      if (n > 0) {
        total += static_cast<std::size_t>(n);
        continue;
      }
      REQUIRE(errno == EAGAIN);
      co_await rsrc.readable();
    }
    co_await writer;
    co_return total;
  };
  CHECK(weft::run(main_task(sp.fds[0], sp.fds[1]), {.worker_threads = 2}) >= 1'000'000);
}

TEST_CASE("io_source: a peer hang-up wakes a waiting reader") {
  weft_test::watchdog dog(10s);
  socket_pair sp;
  weft::runtime rt({.worker_threads = 2});
  weft::io_source src(rt, sp.fds[0]);
  auto reader = rt.spawn(read_some(src));
  std::this_thread::sleep_for(20ms);
  sp.close_side(1);
  auto await_it = [](weft::join_handle<std::string>& h) -> weft::task<std::string> {
    co_return co_await h;
  };
  CHECK(rt.block_on(await_it(reader)).empty());  // end of file
}

TEST_CASE("io_source: a ping-pong over a pipe pair completes many rounds") {
  weft_test::watchdog dog(30s);
  int ab[2];
  int ba[2];
  REQUIRE(::pipe2(ab, O_NONBLOCK | O_CLOEXEC) == 0);
  REQUIRE(::pipe2(ba, O_NONBLOCK | O_CLOEXEC) == 0);
  auto side = [](int in, int out, int rounds, bool starts) -> weft::task<int> {
    weft::io_source src_in(in);
    int seen = 0;
    for (int r = 0; r < rounds; ++r) {
      if (starts) CHECK(::write(out, "p", 1) == 1);
      char c = 0;
      for (;;) {
        if (::read(in, &c, 1) == 1) break;
        REQUIRE(errno == EAGAIN);
        co_await src_in.readable();
      }
      ++seen;
      if (!starts) CHECK(::write(out, "q", 1) == 1);
    }
    co_return seen;
  };
  auto main_task = [&]() -> weft::task<int> {
    auto [a, b] =
        co_await weft::gather(side(ba[0], ab[1], 2000, true), side(ab[0], ba[1], 2000, false));
    co_return a + b;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 4000);
  for (int fd : {ab[0], ab[1], ba[0], ba[1]})
    ::close(fd);
}

TEST_CASE("io_source: constructing one outside a runtime throws logic_error") {
  socket_pair sp;
  CHECK_THROWS_AS(weft::io_source(sp.fds[0]), std::logic_error);
}
