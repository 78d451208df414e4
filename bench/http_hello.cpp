// bench/http_hello.cpp (also built as bench_http_pipelined): requests per second of an HTTP
// server answering a 13-byte body, driven by `wrk` over keep-alive connections on loopback.
//
// `--system weft`: weft::http::server in this process, one worker thread (runtime option
// worker_threads = 1; its poller thread too), this process pinned to CPU 0. `--system nginx`:
// Debian's nginx, `worker_processes 1`, pinned to CPU 0, its configuration written to a temporary
// directory, on a high port, answering with `return 200 "Hello, world!"`. In both cases wrk runs
// pinned to CPU 1 (`taskset -c 1 wrk -t<t> -c<conns> -d<seconds>s --latency`); with --depth above
// 1 a Lua script makes wrk pipeline that many requests per write.
//
// Each timed run is one wrk invocation; it prints the time 1,000,000 requests take at the
// measured rate (so per_op_ns is the time per request, and the ratio weft/nginx below 1.0 means
// weft served more). Extra fields: requests_per_s and p99_ms (medians over runs), and
// idle_conn_bytes: the serving process's resident memory per idle keep-alive connection (--idle
// connections, default 1,000, each after one request; for nginx its worker process). A response
// other than 2xx, a socket error reported by wrk or a wrong body fails the process.
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

extern char** environ;

#ifndef BENCH_DEFAULT_DEPTH
#define BENCH_DEFAULT_DEPTH 1
#endif

namespace {

constexpr std::string_view hello_body = "Hello, world!";

struct wrk_result {
  double requests_per_s = 0;
  double p99_ms = 0;
};

double to_ms(const std::string& value) {
  const double number = std::stod(value);
  if (value.find("us") != std::string::npos) return number / 1000.0;
  if (value.find("ms") != std::string::npos) return number;
  if (value.find('m') != std::string::npos) return number * 60000.0;
  return number * 1000.0;  // "s"
}

std::string lua_script(const std::filesystem::path& dir, long depth) {
  const auto path = dir / "pipeline.lua";
  std::ofstream out(path);
  out << "init = function(args)\n"
         "  local r = {}\n"
         "  for i = 1, "
      << depth
      << " do r[i] = wrk.format(nil, \"/\") end\n"
         "  req = table.concat(r)\n"
         "end\n"
         "request = function() return req end\n";
  return path.string();
}

wrk_result run_wrk(std::uint16_t port, const bench::options& opts, long seconds,
                   const std::string& script) {
  std::string cmd = "taskset -c 1 wrk -t" + std::to_string(opts.param("wrk_threads", 1)) + " -c" +
                    std::to_string(opts.param("conns", 50)) + " -d" + std::to_string(seconds) +
                    "s --latency";
  if (!script.empty()) cmd += " -s " + script;
  cmd += " http://127.0.0.1:" + std::to_string(port) + "/ 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  bench::check(pipe != nullptr, "popen wrk");
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr)
    output += buffer.data();
  bench::check(::pclose(pipe) == 0, "wrk exited with an error (is wrk installed?)");
  wrk_result result;
  std::size_t at = output.find("Requests/sec:");
  bench::check(at != std::string::npos, "wrk printed no Requests/sec");
  result.requests_per_s = std::stod(output.substr(at + 13));
  at = output.find(" 99% ");
  bench::check(at != std::string::npos, "wrk printed no 99th percentile");
  std::string rest = output.substr(at + 5);
  rest.erase(0, rest.find_first_not_of(' '));
  result.p99_ms = to_ms(rest.substr(0, rest.find_first_of(" \n")));
  if (output.find("Non-2xx") != std::string::npos ||
      output.find("Socket errors") != std::string::npos) {
    std::fprintf(stderr, "%s", output.c_str());
    // Connection errors at the very end of a run (wrk stops mid-request) are not failures;
    // non-2xx answers are.
    bench::check(output.find("Non-2xx") == std::string::npos, "non-2xx responses");
  }
  return result;
}

// One plain GET over a blocking socket: the server answers the right body.
void check_answer(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = false;
  for (int i = 0; i < 100 && !connected; ++i) {  // nginx may still be starting
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
    if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bench::check(connected, "connect to the server");
  const std::string_view req = "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  bench::check(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()), "send");
  std::string reply;
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    reply.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  bench::check(reply.rfind("HTTP/1.1 200", 0) == 0, "status 200");
  bench::check(
      reply.size() >= hello_body.size() &&
          reply.compare(reply.size() - hello_body.size(), hello_body.size(), hello_body) == 0,
      "the 13-byte body");
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bench::check(::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0, "bind");
  socklen_t size = sizeof at;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &size);
  ::close(fd);
  return ntohs(at.sin_port);
}

long rss_bytes_of(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// nginx's worker process: the child of its master.
pid_t nginx_worker(pid_t master) {
  std::ifstream children("/proc/" + std::to_string(master) + "/task/" + std::to_string(master) +
                         "/children");
  pid_t worker = 0;
  children >> worker;
  return worker;
}

// Memory per idle keep-alive connection: the serving process's resident memory before and after
// `count` connections each made one request and stayed open (blocking client sockets here).
long idle_connection_bytes(std::uint16_t port, pid_t server, long count) {
  const long before = rss_bytes_of(server);
  std::vector<int> fds;
  const std::string_view req = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
  for (long i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bench::check(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0,
                 "connect an idle connection");
    bench::check(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()), "send");
    std::array<char, 1024> buffer{};
    bench::check(::recv(fd, buffer.data(), buffer.size(), 0) > 0, "an answer");
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long after = rss_bytes_of(server);
  for (const int fd : fds)
    ::close(fd);
  return (after - before) / count;
}

pid_t start_nginx(const std::filesystem::path& dir, std::uint16_t port) {
  const auto conf = dir / "nginx.conf";
  std::ofstream out(conf);
  out << "worker_processes 1;\nworker_rlimit_nofile 16384;\ndaemon off;\npid "
      << (dir / "nginx.pid").string() << ";\nerror_log " << (dir / "error.log").string()
      << " error;\nevents { worker_connections 4096; }\n"
         "http {\n  access_log off;\n  keepalive_requests 100000000;\n"
         "  client_body_temp_path "
      << (dir / "body").string() << ";\n  proxy_temp_path " << (dir / "proxy").string()
      << ";\n  fastcgi_temp_path " << (dir / "fastcgi").string() << ";\n  uwsgi_temp_path "
      << (dir / "uwsgi").string() << ";\n  scgi_temp_path " << (dir / "scgi").string()
      << ";\n  server {\n    listen 127.0.0.1:" << port
      << ";\n    location / { return 200 \"Hello, world!\"; }\n  }\n}\n";
  out.close();
  const char* nginx = std::filesystem::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
  std::vector<std::string> args = {"taskset", "-c",         "0",  nginx,
                                   "-p",      dir.string(), "-c", conf.string()};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  bench::check(::posix_spawnp(&pid, "taskset", nullptr, nullptr, argv.data(), environ) == 0,
               "start nginx (is nginx installed?)");
  return pid;
}

void pin_to_cpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::options opts = bench::parse(argc, argv);
  // The idle connections' two ends both live in this process (weft's case).
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  const long seconds = opts.param("seconds", 10);
  const long depth = opts.param("depth", BENCH_DEFAULT_DEPTH);
  const auto dir =
      std::filesystem::temp_directory_path() / ("weft-http-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string script = depth > 1 ? lua_script(dir, depth) : std::string();

  std::vector<double> rates;
  std::vector<double> p99s;
  const long idle = opts.param("idle", 1000);
  long idle_bytes = 0;
  auto measure = [&](std::uint16_t port, pid_t server) {
    check_answer(port);
    run_wrk(port, opts, 1, script);  // warm-up: connections, caches, the CPU's clock
    for (int i = 0; i < opts.warmup; ++i)
      run_wrk(port, opts, seconds, script);
    for (int i = 0; i < opts.runs; ++i) {
      const wrk_result r = run_wrk(port, opts, seconds, script);
      rates.push_back(r.requests_per_s);
      p99s.push_back(r.p99_ms);
      bench::emit_run(1e6 / r.requests_per_s * 1000.0);
    }
    check_answer(port);
    if (idle > 0) idle_bytes = idle_connection_bytes(port, server, idle);
  };

  if (opts.system == "weft") {
    pin_to_cpu0();
    weft::runtime_options options;
    options.worker_threads = 1;
    weft::run(
        [&]() -> weft::task<void> {
          weft::http::server_options server_options;
          auto srv = co_await weft::http::server::start(
              [](weft::http::request&) -> weft::task<weft::http::response> {
                co_return weft::http::response::text(200, std::string(hello_body));
              },
              "127.0.0.1", 0, server_options);
          const std::uint16_t port = srv.port();
          co_await weft::to_thread([&] { measure(port, ::getpid()); });
          co_await srv.shutdown(std::chrono::milliseconds(1000));
        }(),
        options);
  } else if (opts.system == "nginx") {
    const std::uint16_t port = free_port();
    const pid_t pid = start_nginx(dir, port);
    check_answer(port);
    measure(port, nginx_worker(pid));
    ::kill(pid, SIGQUIT);
    int status = 0;
    ::waitpid(pid, &status, 0);
  } else {
    bench::unknown_system(opts);
  }
  std::filesystem::remove_all(dir);

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  char extra[160];
  std::snprintf(extra, sizeof extra,
                "\"requests_per_s\":%.0f,\"p99_ms\":%.3f,\"idle_conn_bytes\":%ld", median(rates),
                median(p99s), idle_bytes);
  bench::emit_end(extra);
  return 0;
}
