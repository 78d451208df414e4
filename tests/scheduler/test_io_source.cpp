// tests/test_io_source.cpp: weft::io_source: a task waiting for readability or writability of a
// non-blocking descriptor is woken when the peer acts, readiness that arrives while nobody waits is
// remembered, and hang-ups count as readiness.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/sockets.hpp"
#include "support/stress.hpp"
#include "support/time_slice.hpp"
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

namespace {

// Two tasks bounce a byte over a pair of pipes `rounds` times; returns the bytes both saw.
int pipe_ping_pong(int rounds, weft::runtime_options options) {
  int ab[2];
  int ba[2];
  REQUIRE(::pipe2(ab, O_NONBLOCK | O_CLOEXEC) == 0);
  REQUIRE(::pipe2(ba, O_NONBLOCK | O_CLOEXEC) == 0);
  auto side = [](int in, int out, int count, bool starts) -> weft::task<int> {
    weft::io_source src_in(in);
    int seen = 0;
    for (int r = 0; r < count; ++r) {
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
        co_await weft::gather(side(ba[0], ab[1], rounds, true), side(ab[0], ba[1], rounds, false));
    co_return a + b;
  };
  const int seen = weft::run(main_task(), std::move(options));
  for (int fd : {ab[0], ab[1], ba[0], ba[1]})
    ::close(fd);
  return seen;
}

// Socket pairs echoed by server tasks while clients ping them, sleep a little and spawn short
// tasks between rounds, so readiness, timers and spawns race with workers parking (as the I/O
// driver or on their futex). Returns the round trips completed.
std::size_t echo_with_timers_and_spawns(std::size_t pairs, int rounds,
                                        weft::runtime_options options) {
  auto server = [](int fd) -> weft::task<void> {
    weft::io_source src(fd);
    for (;;) {
      char buffer[64];
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n == 0) co_return;  // the client closed
      if (n < 0) {
        REQUIRE(errno == EAGAIN);
        co_await src.readable();
        continue;
      }
      REQUIRE(::write(fd, buffer, static_cast<std::size_t>(n)) == n);
    }
  };
  auto client = [](int fd, int count, std::size_t seed) -> weft::task<int> {
    weft::io_source src(fd);
    int done = 0;
    for (int r = 0; r < count; ++r) {
      const char c = static_cast<char>('a' + r % 26);
      REQUIRE(::write(fd, &c, 1) == 1);
      char back = 0;
      for (;;) {
        const ssize_t n = ::read(fd, &back, 1);
        if (n == 1) break;
        REQUIRE(errno == EAGAIN);
        co_await src.readable();
      }
      CHECK(back == c);
      ++done;
      const std::size_t pick = (seed + static_cast<std::size_t>(r) * 7) % 8;
      if (pick == 0) co_await weft::sleep(std::chrono::microseconds(200 + (seed % 5) * 100));
      if (pick == 1) co_await weft::spawn([]() -> weft::task<void> { co_return; }());
      if (pick == 2) co_await weft::yield_now();
    }
    ::shutdown(fd, SHUT_WR);
    co_return done;
  };
  std::vector<std::unique_ptr<socket_pair>> sockets;
  for (std::size_t i = 0; i < pairs; ++i)
    sockets.push_back(std::make_unique<socket_pair>());
  auto main_task = [&]() -> weft::task<std::size_t> {
    std::vector<weft::join_handle<void>> servers;
    std::vector<weft::join_handle<int>> clients;
    for (std::size_t i = 0; i < pairs; ++i) {
      servers.push_back(weft::spawn(server(sockets[i]->fds[0])));
      clients.push_back(weft::spawn(client(sockets[i]->fds[1], rounds, i)));
    }
    std::size_t total = 0;
    for (auto& c : clients)
      total += static_cast<std::size_t>(co_await c);
    for (auto& s : servers)
      co_await s;
    co_return total;
  };
  return weft::run(main_task(), std::move(options));
}

}  // namespace

TEST_CASE("io_source: a ping-pong over a pipe pair completes many rounds") {
  weft_test::watchdog dog(30s);
  CHECK(pipe_ping_pong(2000, {.worker_threads = 2}) == 4000);
}

TEST_CASE("io_source: a ping-pong completes with the I/O driver in park and without it") {
  weft_test::watchdog dog(30s);
  for (const bool in_park : {true, false}) {
    CAPTURE(in_park);
    weft::runtime_options options;
    options.io_driver_in_park = in_park;
    options.worker_threads = 1;
    CHECK(pipe_ping_pong(1000, options) == 2000);
    options.worker_threads = 3;
    CHECK(pipe_ping_pong(1000, options) == 2000);
  }
}

TEST_CASE("io_source: readiness reaches an idle worker while another is stuck in a long task") {
  // The idle worker sleeps as the I/O driver (or the poller thread wakes it): the reader must
  // not wait for the busy worker. Generous bound: the blocker holds its worker for 2 s.
  weft_test::watchdog dog(30s);
  for (const bool in_park : {true, false}) {
    CAPTURE(in_park);
    socket_pair sp;
    std::atomic<bool> release{false};
    auto main_task = [&]() -> weft::task<std::chrono::nanoseconds> {
      weft::io_source src(sp.fds[0]);
      // A parameter, not a capture: the lambda object is gone once spawn has the task.
      auto blocker = weft::spawn([](std::atomic<bool>& stop) -> weft::task<void> {
        const auto until = std::chrono::steady_clock::now() + 2s;
        while (!stop.load() && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(1ms);
        co_return;
      }(release));
      co_await weft::sleep(20ms);
      std::thread writer([&] { CHECK(::write(sp.fds[1], "x", 1) == 1); });
      const auto started = std::chrono::steady_clock::now();
      const std::string got = co_await read_some(src);
      const auto took = std::chrono::steady_clock::now() - started;
      writer.join();
      release.store(true);
      co_await blocker;
      CHECK(got == "x");
      co_return took;
    };
    weft::runtime_options options;
    options.io_driver_in_park = in_park;
    options.worker_threads = 2;
    CHECK(weft::run(main_task(), options) < 1s);
  }
}

TEST_CASE("io_source: the first registration gives the runtime's threads a short time slice") {
  // A worker busy with I/O tasks must give its core soon to the threads its replies woke
  // (scheduler/time_slice.hpp; bench tcp_echo). A runtime without I/O keeps the default slice.
  weft_test::watchdog dog(10s);
  if (!weft_test::kernel_has_custom_slices()) {
    MESSAGE("skipped: the kernel has no custom time slices (Linux < 6.12)");
    return;
  }
  socket_pair sp;
  auto main_task = [](int fd) -> weft::task<std::pair<long long, long long>> {
    const long long before = weft_test::slice_of_this_thread();
    weft::io_source src(fd);
    co_return std::pair{before, weft_test::slice_of_this_thread()};
  };
  const auto [before, after] = weft::run(main_task(sp.fds[0]), {.worker_threads = 2});
  CHECK(before != 100'000);
  CHECK(before > 0);  // the kernel's default
  CHECK(after == 100'000);
}

TEST_CASE("io_source: constructing one outside a runtime throws logic_error") {
  socket_pair sp;
  CHECK_THROWS_AS(weft::io_source(sp.fds[0]), std::logic_error);
}

TEST_SUITE("stress") {
  TEST_CASE("io_source: echoes racing with timers and spawns and parking lose no wake-up") {
    weft_test::watchdog dog(120s);
    const int rounds = static_cast<int>(weft_test::stress_count(300, 20000));
    constexpr std::size_t pairs = 6;
    for (const bool in_park : {true, false}) {
      for (const std::size_t workers : {std::size_t{1}, std::size_t{3}}) {
        CAPTURE(in_park);
        CAPTURE(workers);
        weft::runtime_options options;
        options.io_driver_in_park = in_park;
        options.worker_threads = workers;
        // No spinning: every idle moment parks, so the driver role changes hands constantly.
        options.spin_before_park = std::chrono::microseconds(0);
        CHECK(echo_with_timers_and_spawns(pairs, rounds, options) ==
              pairs * static_cast<std::size_t>(rounds));
      }
    }
    weft_test::stress_summary(std::to_string(pairs * static_cast<std::size_t>(rounds) * 4) +
                              " round trips");
  }
}
