// bench/tcp_echo.cpp: server CPU per request of an echo server on loopback. `conns` connections
// each make `msgs` round trips of `bytes` bytes; operations = conns * msgs round trips.
//
// The server runs in this process (`--system weft|asio`), with `threads` worker threads; the
// client is this same binary started as a child process (`--role client`, posix_spawn), the same
// client for every system: TCP_NODELAY, write then read back each message, timing every round
// trip; one thread driving every connection through epoll (`--client loop`, the default), or one
// blocking thread per connection (`--client threads`). Server CPU is getrusage(RUSAGE_SELF) of this
// process around each run (the client's CPU is the child's and is not counted); the process does
// nothing else meanwhile. Each timed run prints its wall time; the extra fields carry the medians
// over runs of the server's CPU per round trip (`server_cpu_us_per_req`, the headline), the
// client's p50 and p99 round trip (`p50_us`, `p99_us`) and `requests_per_s`.
//
// Shapes: weft: an accept loop task, one task per connection doing read_some / write_all on a
// weft::tcp_stream. Asio: an acceptor coroutine (co_spawn), one coroutine per connection doing
// async_read_some / async_write with use_awaitable, on an io_context run by `threads` threads.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

extern char** environ;

namespace {

// ---- the client (child process) ----

void read_full(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, data, size, 0);
    bench::check(n > 0, "client: the server closed or failed");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

int connect_to(long port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bench::check(fd >= 0, "client: socket");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bench::check(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0, "client: connect");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// `client=threads`: one blocking thread per connection. With 16 connections on 2 cores, 16
// client threads and the server's threads share the cores, and the tail measures the kernel's
// choice of who runs next as much as either server.
void threads_client(long port, long conns, long msgs, std::size_t bytes,
                    std::vector<std::vector<double>>& latencies) {
  std::vector<std::thread> threads;
  for (long c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      const int fd = connect_to(port);
      std::string out(bytes, static_cast<char>('a' + c % 26));
      std::string in(bytes, '\0');
      auto& mine = latencies[static_cast<std::size_t>(c)];
      for (long i = 0; i < msgs; ++i) {
        out[0] = static_cast<char>(i);
        const auto sent_at = std::chrono::steady_clock::now();
        bench::check(::send(fd, out.data(), bytes, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes),
                     "client: send");
        read_full(fd, in.data(), bytes);
        mine.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - sent_at)
                .count());
        bench::check(in == out, "client: the echo differs from what was sent");
      }
      ::close(fd);
    });
  }
  for (auto& t : threads)
    t.join();
}

// `client=loop` (the default): one thread drives every connection through epoll, as wrk and
// other load generators do, so the client takes one core's worth of threads, not `conns`.
// Each connection still has one message in flight: it sends the next as soon as the echo of the
// last is complete, and the round trip is timed from the send to the last byte read.
void loop_client(long port, long conns, long msgs, std::size_t bytes,
                 std::vector<std::vector<double>>& latencies) {
  struct connection {
    int fd = -1;
    long sent = 0;        // messages sent
    std::size_t got = 0;  // bytes of the current echo read so far
    std::string out, in;
    std::chrono::steady_clock::time_point sent_at;
  };
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  bench::check(ep >= 0, "client: epoll_create1");
  std::vector<connection> all(static_cast<std::size_t>(conns));
  auto send_next = [&](connection& c) {
    c.out[0] = static_cast<char>(c.sent);
    c.got = 0;
    c.sent_at = std::chrono::steady_clock::now();
    // A 1,000-byte message fits an empty loopback socket buffer: the echo of the last message
    // was read in full, so nothing of ours is queued and the send completes at once.
    bench::check(::send(c.fd, c.out.data(), bytes, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes),
                 "client: send");
    ++c.sent;
  };
  for (long i = 0; i < conns; ++i) {
    connection& c = all[static_cast<std::size_t>(i)];
    c.fd = connect_to(port);
    c.out.assign(bytes, static_cast<char>('a' + i % 26));
    c.in.assign(bytes, '\0');
    latencies[static_cast<std::size_t>(i)].reserve(static_cast<std::size_t>(msgs));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<std::uint64_t>(i);
    bench::check(::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) == 0, "client: epoll_ctl");
  }
  for (auto& c : all)
    send_next(c);
  long open = conns;
  std::array<epoll_event, 64> events{};
  while (open > 0) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    bench::check(n > 0, "client: epoll_wait");
    for (int e = 0; e < n; ++e) {
      const auto index = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
      connection& c = all[index];
      const ssize_t got = ::recv(c.fd, c.in.data() + c.got, bytes - c.got, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      bench::check(got > 0, "client: the server closed or failed");
      c.got += static_cast<std::size_t>(got);
      if (c.got < bytes) continue;
      latencies[index].push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - c.sent_at)
              .count());
      bench::check(c.in == c.out, "client: the echo differs from what was sent");
      if (c.sent < msgs) {
        send_next(c);
      } else {
        ::close(c.fd);
        --open;
      }
    }
  }
  ::close(ep);
}

int run_client(const bench::options& opts) {
  const long port = opts.param("port", 0);
  const long conns = opts.param("conns", 16);
  const long msgs = opts.param("msgs", 20000);
  const auto bytes = static_cast<std::size_t>(opts.param("bytes", 1000));
  const std::string shape = opts.text_param("client", "loop");
  bench::check(shape == "loop" || shape == "threads", "client: --client is loop or threads");
  const bool threads = shape == "threads";
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(conns));
  const auto start = std::chrono::steady_clock::now();
  if (threads) {
    threads_client(port, conns, msgs, bytes, latencies);
  } else {
    loop_client(port, conns, msgs, bytes, latencies);
  }
  const double wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : latencies)
    all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  const double p50 = all[all.size() / 2];
  const double p99 = all[all.size() * 99 / 100];
  std::printf("%.4f %.3f %.3f\n", wall_ms, p50, p99);
  return 0;
}

// ---- the servers ----

weft::task<> weft_echo(weft::tcp_stream conn) {
  conn.set_nodelay(true);
  std::array<char, 4096> buffer{};
  try {
    for (;;) {
      const std::size_t n = co_await conn.read_some(buffer);
      if (n == 0) break;
      co_await conn.write_all(std::string_view(buffer.data(), n));
    }
  } catch (const weft::net_error&) {
  }
}

weft::task<> weft_accept_loop(weft::tcp_listener& listener) {
  for (;;)
    weft::spawn(weft_echo(co_await listener.accept())).detach();
}

asio::awaitable<void> asio_echo(asio::ip::tcp::socket socket) {
  socket.set_option(asio::ip::tcp::no_delay(true));
  std::array<char, 4096> buffer{};
  try {
    for (;;) {
      const std::size_t n =
          co_await socket.async_read_some(asio::buffer(buffer), asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(buffer.data(), n), asio::use_awaitable);
    }
  } catch (const std::exception&) {  // eof or reset: the connection is over
  }
}

asio::awaitable<void> asio_accept_loop(asio::ip::tcp::acceptor& acceptor) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), asio_echo(std::move(socket)), asio::detached);
  }
}

// ---- one timed run: a client process against the running server ----

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct run_result {
  double wall_ms = 0;
  double cpu_us_per_req = 0;
  double p50_us = 0;
  double p99_us = 0;
};

run_result run_client_process(const bench::options& opts, std::uint16_t port) {
  int out[2];
  bench::check(::pipe(out) == 0, "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string port_text = std::to_string(port);
  const std::string conns = std::to_string(opts.param("conns", 16));
  const std::string msgs = std::to_string(opts.param("msgs", 20000));
  const std::string bytes = std::to_string(opts.param("bytes", 1000));
  std::vector<std::string> args = {"/proc/self/exe",
                                   "--system",
                                   "client",
                                   "--port",
                                   port_text,
                                   "--conns",
                                   conns,
                                   "--msgs",
                                   msgs,
                                   "--bytes",
                                   bytes,
                                   "--client",
                                   opts.text_param("client", "loop")};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const double cpu_before = cpu_seconds();
  pid_t child = 0;
  bench::check(
      ::posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv.data(), environ) == 0,
      "posix_spawn of the client");
  ::close(out[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  const double cpu = cpu_seconds() - cpu_before;
  posix_spawn_file_actions_destroy(&actions);
  std::array<char, 256> text{};
  const ssize_t n = ::read(out[0], text.data(), text.size() - 1);
  ::close(out[0]);
  bench::check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && n > 0, "the client failed");
  run_result r;
  bench::check(std::sscanf(text.data(), "%lf %lf %lf", &r.wall_ms, &r.p50_us, &r.p99_us) == 3,
               "client output");
  const double requests = static_cast<double>(opts.param("conns", 16) * opts.param("msgs", 20000));
  r.cpu_us_per_req = cpu * 1e6 / requests;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_all(const bench::options& opts, std::uint16_t port) {
  std::vector<double> cpu;
  std::vector<double> p50;
  std::vector<double> p99;
  std::vector<double> rps;
  const double requests = static_cast<double>(opts.param("conns", 16) * opts.param("msgs", 20000));
  for (int i = 0; i < opts.warmup; ++i)
    (void)run_client_process(opts, port);
  for (int i = 0; i < opts.runs; ++i) {
    const run_result r = run_client_process(opts, port);
    bench::emit_run(r.wall_ms);
    cpu.push_back(r.cpu_us_per_req);
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
    rps.push_back(requests * 1000.0 / r.wall_ms);
  }
  char extra[256];
  std::snprintf(extra, sizeof extra,
                "\"server_cpu_us_per_req\":%.3f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
                "\"requests_per_s\":%.0f",
                median(cpu), median(p50), median(p99), median(rps));
  bench::emit_end(extra);
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  if (opts.system == "client") return run_client(opts);
  if (opts.system == "weft") {
    auto options = bench::weft_options(opts);
    // --spin_us: the workers' spin before parking (default: the runtime's own, 50 us).
    if (opts.params.count("spin_us") != 0) {
      options.spin_before_park = std::chrono::microseconds(opts.param("spin_us", 50));
    }
    weft::runtime rt(std::move(options));
    auto listener = rt.block_on([]() -> weft::task<weft::tcp_listener> {
      co_return weft::tcp_listener::bind(*weft::socket_address::parse("127.0.0.1", 0));
    }());
    const std::uint16_t port = listener.local_address().port();
    auto loop = rt.spawn(weft_accept_loop(listener));
    run_all(opts, port);
    loop.cancel();
    rt.shutdown(std::chrono::milliseconds(1000));
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    asio::ip::tcp::acceptor acceptor(
        pool.io(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t port = acceptor.local_endpoint().port();
    asio::co_spawn(pool.io(), asio_accept_loop(acceptor), asio::detached);
    run_all(opts, port);
    asio::post(pool.io(), [&] { acceptor.close(); });
    pool.stop();
  } else {
    bench::unknown_system(opts);
  }
}
