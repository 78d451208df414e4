// tests/net/test_tcp.cpp: weft::tcp_stream and weft::tcp_listener on loopback: echo, half-close,
// Happy Eyeballs order and timeout, peer reset during a write, cancellation during a read,
// running out of descriptors while accepting, and many connections at once.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using weft_test::loopback;

namespace {

// Echoes one connection until the peer half-closes, then half-closes too.
weft::task<void> echo(weft::tcp_stream conn) {
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await conn.read_some(buffer);
    if (n == 0) break;
    co_await conn.write_all(std::string_view(buffer.data(), n));
  }
  conn.shutdown_write();
}

// Reads until the end of the stream.
weft::task<std::string> read_to_end(weft::stream_socket& s) {
  std::string all;
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await s.read_some(buffer);
    if (n == 0) co_return all;
    all.append(buffer.data(), n);
  }
}

// Two ends of one loopback connection.
struct connected_pair {
  connected_pair(weft::tcp_stream c, weft::tcp_stream s)
      : client(std::move(c)), server(std::move(s)) {}
  weft::tcp_stream client;
  weft::tcp_stream server;
};

weft::task<connected_pair> connect_pair() {
  auto listener = weft::tcp_listener::bind(loopback());
  auto accepted = weft::spawn([](weft::tcp_listener& l) { return l.accept(); }, std::ref(listener));
  auto client = co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
  auto server = co_await accepted;
  co_return connected_pair(std::move(client), std::move(server));
}

}  // namespace

TEST_CASE("tcp: a client's bytes come back from an echo server") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(loopback());
    const auto port = listener.local_address().port();
    CHECK(port != 0);
    auto server = weft::spawn(
        [](weft::tcp_listener& l) -> weft::task<void> { co_await echo(co_await l.accept()); },
        std::ref(listener));
    auto client = co_await weft::tcp_stream::connect("127.0.0.1", port);
    client.set_nodelay(true);
    client.set_keepalive(true, 30s, 3);
    CHECK(client.peer_address().port() == port);
    CHECK(client.local_address().port() != 0);
    std::string payload(300000, 'x');
    for (std::size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    // Write and read at once: the payload is larger than the socket buffers.
    auto writer = weft::spawn(
        [](weft::tcp_stream& c, const std::string& p) -> weft::task<void> {
          co_await c.write_all(p);
          c.shutdown_write();
        },
        std::ref(client), std::cref(payload));
    const std::string echoed = co_await read_to_end(client);
    co_await writer;
    co_await server;
    CHECK(echoed == payload);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tcp: after a half-close the peer reads the end and can still answer") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(loopback());
    auto server = weft::spawn(
        [](weft::tcp_listener& l) -> weft::task<void> {
          auto conn = co_await l.accept();
          const std::string request =
              co_await read_to_end(conn);  // ends at the client's half-close
          co_await conn.write_all("got " + request);
        },
        std::ref(listener));
    auto client =
        co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
    co_await client.write_all("question");
    client.shutdown_write();
    CHECK(co_await read_to_end(client) == "got question");
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tcp: connecting where nobody listens is connection_refused naming the address") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    // A port that was just free: bind, note, close.
    weft::socket_address free_address;
    {
      auto l = weft::tcp_listener::bind(loopback());
      free_address = l.local_address();
    }
    try {
      (void)co_await weft::tcp_stream::connect(weft_test::addresses(free_address));
      FAIL("connected to a closed port");
    } catch (const weft::connection_refused& e) {
      CHECK(std::string(e.what()).find(free_address.to_string()) != std::string::npos);
      CHECK(e.code() == std::errc::connection_refused);
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tcp: binding a taken address is address_in_use") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto first = weft::tcp_listener::bind(loopback());
    CHECK_THROWS_AS(weft::tcp_listener::bind(first.local_address(), {.reuse_address = false}),
                    weft::address_in_use);
    co_return;
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("tcp: Happy Eyeballs starts the next address after the attempt delay") {
  weft_test::watchdog dog(20s);
  weft_test::black_hole hole;
  auto main_task = [](weft::socket_address unreachable) -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(loopback());
    auto server =
        weft::spawn([](weft::tcp_listener& l) -> weft::task<void> { (void)co_await l.accept(); },
                    std::ref(listener));
    const auto start = std::chrono::steady_clock::now();
    auto stream = co_await weft::tcp_stream::connect(
        weft_test::addresses(unreachable, listener.local_address()), {.attempt_delay = 150ms});
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(stream.peer_address() == listener.local_address());
    // The unreachable address went first and had its delay before the second began.
    CHECK(elapsed >= 150ms);
    CHECK(elapsed < 5s);
    co_await server;
  };
  weft::run(main_task(hole.address()), {.worker_threads = 2});
}

TEST_CASE("tcp: Happy Eyeballs moves on at once when an address refuses") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    weft::socket_address refused;
    {
      auto l = weft::tcp_listener::bind(loopback());
      refused = l.local_address();
    }
    auto listener = weft::tcp_listener::bind(loopback());
    auto server =
        weft::spawn([](weft::tcp_listener& l) -> weft::task<void> { (void)co_await l.accept(); },
                    std::ref(listener));
    const auto start = std::chrono::steady_clock::now();
    auto stream = co_await weft::tcp_stream::connect(
        weft_test::addresses(refused, listener.local_address()), {.attempt_delay = 10s});
    CHECK(stream.peer_address() == listener.local_address());
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // did not wait out the 10 s delay
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tcp: Happy Eyeballs alternates address families in the resolver's order") {
  const auto a6 = *weft::socket_address::parse("::1", 1);
  const auto b6 = *weft::socket_address::parse("::1", 2);
  const auto c6 = *weft::socket_address::parse("::1", 3);
  const auto a4 = *weft::socket_address::parse("127.0.0.1", 1);
  const auto b4 = *weft::socket_address::parse("127.0.0.1", 2);
  const auto order = weft::detail::interleave_families({a6, b6, c6, a4, b4});
  REQUIRE(order.size() == 5);
  CHECK(order[0] == a6);
  CHECK(order[1] == a4);
  CHECK(order[2] == b6);
  CHECK(order[3] == b4);
  CHECK(order[4] == c6);
}

TEST_CASE("tcp: a connect that gets no answer ends with timeout_error") {
  weft_test::watchdog dog(20s);
  weft_test::black_hole hole;
  auto main_task = [](weft::socket_address unreachable) -> weft::task<void> {
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS((void)co_await weft::tcp_stream::connect(weft_test::addresses(unreachable),
                                                             {.timeout = 200ms}),
                    weft::timeout_error);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 5s);
  };
  weft::run(main_task(hole.address()), {.worker_threads = 2});
}

TEST_CASE("tcp: a peer reset during a long write is connection_reset and sent counts the prefix") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(loopback());
    auto server = weft::spawn(
        [](weft::tcp_listener& l) -> weft::task<void> {
          auto conn = co_await l.accept();
          std::array<char, 1000> buffer{};
          std::size_t got = 0;
          while (got < 100000)
            got += co_await conn.read_some(buffer);
          // Reset: close with a zero linger time while unread data waits.
          const linger hard{1, 0};
          REQUIRE(::setsockopt(conn.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) ==
                  0);
          conn.close();
        },
        std::ref(listener));
    auto client =
        co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
    const std::string chunk(1 << 20, 'z');
    std::size_t sent = 0;
    bool failed = false;
    try {
      for (int i = 0; i < 256; ++i)
        co_await client.write_all(chunk, &sent);
    } catch (const weft::connection_reset&) {
      failed = true;
    } catch (const weft::broken_pipe&) {
      failed = true;  // the reset arrived before this write began
    }
    CHECK(failed);
    CHECK(sent >= 100000);
    CHECK(sent < 256U * chunk.size());
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tcp: a reader whose socket always has data lets the other tasks of its worker run") {
  weft_test::watchdog dog(60s);
  auto main_task = []() -> weft::task<void> {
    constexpr std::size_t total = 32 * 1024;
    connected_pair ends = co_await connect_pair();
    co_await ends.server.write_all(std::string(total, 'x'));
    // One byte per read: every read finds data, so the reader never waits for readiness.
    std::size_t got = 0;
    weft::event started;
    auto reader = weft::spawn(
        [](weft::tcp_stream& c, std::size_t& count, weft::event& first) -> weft::task<void> {
          std::array<char, 1> byte{};
          while (count < total) {
            count += co_await c.read_some(byte);
            first.set();
          }
        },
        std::ref(ends.client), std::ref(got), std::ref(started));
    co_await started.wait();
    // Here only once the reader let go of the only worker: at its budget, not at its end.
    CHECK(got < total);
    co_await reader;
    CHECK(got == total);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("tcp: a read cancelled while waiting loses no byte") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    connected_pair ends = co_await connect_pair();
    weft::tcp_stream& client = ends.client;
    weft::tcp_stream& server_side = ends.server;
    std::array<char, 64> buffer{};
    auto reader =
        weft::spawn([](weft::tcp_stream& c, std::array<char, 64>& b) { return c.read_some(b); },
                    std::ref(client), std::ref(buffer));
    co_await weft::sleep(30ms);  // the reader waits now
    reader.cancel();
    CHECK_THROWS_AS(co_await reader, weft::cancelled_error);
    co_await server_side.write_all("kept");
    const std::size_t n = co_await client.read_some(buffer);
    CHECK(std::string(buffer.data(), n) == "kept");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "tcp: out of descriptors the listener backs off without spinning and resumes later while "
    "connections work") {
  weft_test::watchdog dog(60s);
  std::mutex log_mutex;
  std::vector<std::string> reports;
  weft::runtime rt({.worker_threads = 2, .log = [&](std::string_view m) {
                      std::lock_guard lock(log_mutex);
                      reports.emplace_back(m);
                    }});
  auto listener = rt.block_on(
      []() -> weft::task<weft::tcp_listener> { co_return weft::tcp_listener::bind(loopback()); }());
  const auto address = listener.local_address();
  // A connection made before the table fills up, which must keep working meanwhile.
  struct pair_of_streams {
    weft::tcp_stream a;
    weft::tcp_stream b;
  };
  auto existing = rt.block_on([](weft::tcp_listener& l) -> weft::task<pair_of_streams> {
    auto accepted =
        weft::spawn([](weft::tcp_listener& inner) { return inner.accept(); }, std::ref(l));
    auto a = co_await weft::tcp_stream::connect(weft_test::addresses(l.local_address()));
    auto b = co_await accepted;
    co_return pair_of_streams{std::move(a), std::move(b)};
  }(listener));
  // The client side is made before the table is full, with plain blocking sockets.
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(client >= 0);
  // Fill the descriptor table up to a low limit.
  weft_test::fd_limit limit(static_cast<rlim_t>(weft_test::open_descriptor_bound() + 16));
  std::vector<int> fillers;
  for (;;) {
    const int fd = ::dup(0);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  const int fill_error = errno;
  // No doctest assertion while the table is full: the sanitizers' runtime needs descriptors
  // (UBSan probes memory through a pipe) and would report false errors.
  auto accepted = rt.spawn(
      [](weft::tcp_listener& l) -> weft::task<bool> {
        auto conn = co_await l.accept();
        co_return conn.is_open();
      },
      std::ref(listener));
  const bool client_connected = ::connect(client, address.data(), address.size()) == 0;
  std::this_thread::sleep_for(100ms);  // the first EMFILE has happened
  const auto cpu_before = weft_test::process_cpu_time();
  std::this_thread::sleep_for(1s);
  const auto cpu = weft_test::process_cpu_time() - cpu_before;
  // The connection made earlier still works.
  const bool existing_works = rt.block_on([](pair_of_streams& p) -> weft::task<bool> {
    co_await p.a.write_all("still here");
    std::array<char, 32> buffer{};
    std::size_t got = 0;
    while (got < 10)
      got += co_await p.b.read_some(std::span<char>(buffer).subspan(got));
    co_return std::string_view(buffer.data(), got) == "still here";
  }(existing));
  const bool accepted_while_full = accepted.done();
  for (int fd : fillers)
    ::close(fd);
  REQUIRE(fill_error == EMFILE);
  REQUIRE(client_connected);  // the kernel completes the handshake without accept
  MESSAGE("runtime CPU time over 1 s with the table full: " << cpu.count() << " us");
  CHECK(cpu < 100ms);  // under 10% of one second: no accept spin
  CHECK(existing_works);
  CHECK_FALSE(accepted_while_full);
  CHECK(rt.block_on([](weft::join_handle<bool> h) -> weft::task<bool> {
    co_return co_await h;
  }(std::move(accepted))));  // resumes within the backoff (at most 1 s)
  ::close(client);
  std::lock_guard lock(log_mutex);
  REQUIRE(reports.size() == 1);  // reported once for the episode
  CHECK(reports[0].find("Too many open files") != std::string::npos);
}

TEST_SUITE("stress") {
  TEST_CASE("tcp: thousands of concurrent loopback connections all echo every byte") {
    std::size_t connections = weft_test::stress_count(200, 10000);
    // Each connection holds two descriptors (client and server side) at the same time.
    rlimit current{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &current) == 0);
    const std::size_t spare = 64;
    if (current.rlim_max < 2 * connections + spare) {
      const std::size_t fit = (current.rlim_max - spare) / 2;
      MESSAGE("RLIMIT_NOFILE's hard limit is " << current.rlim_max << ": " << fit
                                               << " connections instead of " << connections);
      connections = fit;
    }
    weft_test::fd_limit limit(current.rlim_max);
    weft_test::watchdog dog(300s);
    auto main_task = [](std::size_t n) -> weft::task<std::size_t> {
      auto listener = weft::tcp_listener::bind(loopback());
      auto server = weft::spawn(
          [](weft::tcp_listener& l, std::size_t count) -> weft::task<void> {
            std::vector<weft::join_handle<void>> handlers;
            for (std::size_t i = 0; i < count; ++i)
              handlers.push_back(weft::spawn(echo, co_await l.accept()));
            for (auto& h : handlers)
              co_await h;
          },
          std::ref(listener), n);
      weft::latch all_connected(static_cast<std::ptrdiff_t>(n));
      std::vector<weft::join_handle<bool>> clients;
      for (std::size_t i = 0; i < n; ++i) {
        clients.push_back(weft::spawn(
            [](weft::socket_address to, std::size_t id,
               weft::latch& connected) -> weft::task<bool> {
              auto s =
                  co_await weft::tcp_stream::connect(weft_test::addresses(to), {.timeout = 120s});
              connected.count_down();
              co_await connected.wait();  // every connection is open at once
              const std::string message = "client " + std::to_string(id) + std::string(100, '.');
              co_await s.write_all(message);
              s.shutdown_write();
              co_return co_await read_to_end(s) == message;
            },
            listener.local_address(), i, std::ref(all_connected)));
      }
      std::size_t ok = 0;
      for (auto& c : clients)
        ok += (co_await c) ? 1 : 0;
      co_await server;
      co_return ok;
    };
    CHECK(weft::run(main_task(connections), {.worker_threads = 2}) == connections);
    weft_test::stress_summary(std::to_string(connections) + " connections echoed");
  }
}
