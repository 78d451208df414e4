// bench/http_client.cpp: requests per second of weft::http::client against a local HTTP/1.1
// server. `conns` tasks each send requests/conns GETs one after another through one client (a
// pool of `conns` keep-alive connections); operations = requests. Python's urllib in threads is
// the reference (bench/http_client.py), against the same server.
//
// The server is this binary run with `--system serve`: a separate process (so that its CPU is
// not the client's) with one blocking thread per connection, answering every request with the
// 13-byte "Hello, world!", keep-alive unless the request says `Connection: close` (urllib does).
// It prints its port on a line and exits when its standard input closes.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <weft/net/http/client.hpp>
#include <weft/weft.hpp>

#include "harness.hpp"

extern char** environ;

namespace {

void serve_connection(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  static const char keep[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
  static const char closing[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
      "Connection: close\r\n\r\nHello, world!";
  std::string in;
  char buffer[16384];
  for (;;) {
    const std::size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      in.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    std::string head = in.substr(0, end);
    in.erase(0, end + 4);
    for (char& c : head)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool close = head.find("connection: close") != std::string::npos;
    const char* out = close ? closing : keep;
    const std::size_t size = close ? sizeof closing - 1 : sizeof keep - 1;
    if (::write(fd, out, size) != static_cast<ssize_t>(size) || close) break;
  }
  ::close(fd);
}

int serve() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    std::perror("bench_http_client serve");
    return 2;
  }
  std::printf("%d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  std::thread([] {  // the parent closed our standard input: it is gone, so are we
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    std::_Exit(0);
  })
      .detach();
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) std::thread(serve_connection, fd).detach();
  }
}

// Starts the server process; returns its port. Its standard input is a pipe kept open until this
// process exits.
int start_server_process() {
  int to_child[2];
  int from_child[2];
  bench::check(::pipe(to_child) == 0 && ::pipe(from_child) == 0, "pipes");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  posix_spawn_file_actions_addclose(&actions, from_child[0]);
  char self[] = "/proc/self/exe";
  char system_flag[] = "--system";
  char serve_word[] = "serve";
  char* argv[] = {self, system_flag, serve_word, nullptr};
  pid_t pid = 0;
  bench::check(posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, environ) == 0,
               "spawn the server");
  ::close(to_child[0]);
  ::close(from_child[1]);
  char line[32] = {};
  std::size_t got = 0;
  while (got < sizeof line - 1) {
    const ssize_t n = ::read(from_child[0], line + got, 1);
    if (n <= 0 || line[got] == '\n') break;
    ++got;
  }
  ::close(from_child[0]);
  const int port = std::atoi(line);
  bench::check(port > 0, "the server's port");
  return port;  // to_child[1] stays open (and is inherited by nobody: CLOEXEC not needed here)
}

weft::task<long> one_connection(weft::http::client& session, std::string url, long count) {
  long ok = 0;
  for (long i = 0; i < count; ++i) {
    const weft::http::client_response r = co_await session.get(url);
    if (r.status == 200 && r.body == "Hello, world!") ++ok;
  }
  co_return ok;
}

weft::task<long> weft_run(weft::http::client& session, const std::string& url, long requests,
                          long conns) {
  std::vector<weft::join_handle<long>> tasks;
  for (long c = 0; c < conns; ++c)
    tasks.push_back(weft::spawn(one_connection, std::ref(session), url,
                                requests / conns + (c < requests % conns ? 1 : 0)));
  long ok = 0;
  for (auto& t : tasks)
    ok += co_await t;
  co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  if (opts.system == "serve") return serve();
  const long requests = opts.param("requests", 20000);
  const long conns = opts.param("conns", 8);
  if (opts.system == "weft") {
    const int port = start_server_process();
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hello";
    weft::runtime rt(bench::weft_options(opts));
    weft::http::client_options options;
    options.connections_per_origin = static_cast<std::size_t>(conns);
    weft::http::client session(options);
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_run(session, url, requests, conns)) == requests,
                   "every weft client_request answered");
    });
    bench::emit_end("\"connections_opened\":" + std::to_string(session.connections_opened()));
  } else {
    bench::unknown_system(opts);
  }
}
