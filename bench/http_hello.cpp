// bench/http_hello.cpp (also built as bench_http_pipelined and bench_https_hello): requests per
// second of an HTTP server answering a 13-byte body, driven by `wrk` over keep-alive connections
// on loopback; with --tls 1 (bench_https_hello's default) over TLS, with an EC P-256 certificate
// made at bench time by the `openssl` command in the temporary directory, used by both servers
// (weft: server_options::tls; nginx: `listen ... ssl` with the same files).
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
// connections, default 10,000, each after one request, held open by a child process of this
// binary so that the server's process keeps its own descriptors; for nginx its worker process).
// --runs 0 measures only that. A response other than 2xx, a socket error reported by wrk or a
// wrong body fails the process.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

extern char** environ;

#ifndef BENCH_DEFAULT_DEPTH
#define BENCH_DEFAULT_DEPTH 1
#endif
#ifndef BENCH_DEFAULT_TLS
#define BENCH_DEFAULT_TLS 0
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
                   const std::string& script, bool tls) {
  std::string cmd = "taskset -c 1 wrk -t" + std::to_string(opts.param("wrk_threads", 1)) + " -c" +
                    std::to_string(opts.param("conns", 50)) + " -d" + std::to_string(seconds) +
                    "s --latency";
  if (!script.empty()) cmd += " -s " + script;
  cmd += std::string(tls ? " https" : " http") + "://127.0.0.1:" + std::to_string(port) + "/ 2>&1";
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

// A blocking client connection to the server under test, plain or TLS (no verification: the
// certificate is this run's throwaway one).
class client_conn {
 public:
  client_conn(std::uint16_t port, SSL_CTX* tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bench::check(fd_ >= 0, "socket");
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connected = false;
    for (int i = 0; i < 100 && !connected; ++i) {  // nginx may still be starting
      connected = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
      if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    bench::check(connected, "connect to the server");
    if (tls != nullptr) {
      ssl_ = SSL_new(tls);
      bench::check(ssl_ != nullptr && SSL_set_fd(ssl_, fd_) == 1, "SSL_new");
      bench::check(SSL_connect(ssl_) == 1, "the TLS handshake with the server");
    }
  }
  client_conn(const client_conn&) = delete;
  client_conn& operator=(const client_conn&) = delete;
  ~client_conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
  }

  void send_all(std::string_view data) {
    if (ssl_ != nullptr) {
      std::size_t written = 0;
      bench::check(SSL_write_ex(ssl_, data.data(), data.size(), &written) == 1, "TLS send");
    } else {
      bench::check(::send(fd_, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()),
                   "send");
    }
  }
  // Bytes received, 0 at the end of the stream.
  std::size_t receive(std::span<char> buffer) {
    if (ssl_ != nullptr) {
      std::size_t n = 0;
      return SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n) == 1 ? n : 0;
    }
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

struct tls_client_ctx {
  explicit tls_client_ctx(bool tls) {
    if (!tls) return;
    ctx = SSL_CTX_new(TLS_client_method());
    bench::check(ctx != nullptr, "SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  tls_client_ctx(const tls_client_ctx&) = delete;
  tls_client_ctx& operator=(const tls_client_ctx&) = delete;
  ~tls_client_ctx() { SSL_CTX_free(ctx); }
  SSL_CTX* ctx = nullptr;
};

// One GET with Connection: close: the server answers the right body.
void check_answer(std::uint16_t port, bool tls) {
  const tls_client_ctx ctx(tls);
  client_conn c(port, ctx.ctx);
  c.send_all("GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  std::string reply;
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = c.receive(buffer);
    if (n == 0) break;
    reply.append(buffer.data(), n);
  }
  bench::check(reply.rfind("HTTP/1.1 200", 0) == 0, "status 200");
  bench::check(
      reply.size() >= hello_body.size() &&
          reply.compare(reply.size() - hello_body.size(), hello_body.size(), hello_body) == 0,
      "the 13-byte body");
}

// The child process of idle_connection_bytes: opens `count` connections, one request on each,
// prints "ready", and holds them until its standard input closes.
int idle_client(std::uint16_t port, long count, bool tls) {
  const tls_client_ctx ctx(tls);
  std::vector<std::unique_ptr<client_conn>> conns;
  const std::string_view req = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
  for (long i = 0; i < count; ++i) {
    auto c = std::make_unique<client_conn>(port, ctx.ctx);
    c->send_all(req);
    std::array<char, 1024> buffer{};
    bench::check(c->receive(buffer) > 0, "an answer on an idle connection");
    conns.push_back(std::move(c));
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char byte = 0;
  while (::read(0, &byte, 1) > 0) {
  }
  return 0;
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
// `count` connections each made one request and stayed open, held by a child process (this binary
// with --idle-client) so that neither process needs twice `count` descriptors.
long idle_connection_bytes(std::uint16_t port, pid_t server, long count, bool tls) {
  const long before = rss_bytes_of(server);
  int to_child[2];
  int from_child[2];
  bench::check(::pipe2(to_child, O_CLOEXEC) == 0 && ::pipe2(from_child, O_CLOEXEC) == 0, "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
  std::vector<std::string> args = {"/proc/self/exe", "--idle-client", std::to_string(port),
                                   std::to_string(count), tls ? "1" : "0"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  bench::check(
      ::posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv.data(), environ) == 0,
      "start the idle client");
  posix_spawn_file_actions_destroy(&actions);
  ::close(to_child[0]);
  ::close(from_child[1]);
  std::array<char, 16> ready{};
  const ssize_t got = ::read(from_child[0], ready.data(), ready.size());
  bench::check(
      got > 0 && std::string_view(ready.data(), static_cast<std::size_t>(got)) == "ready\n",
      "the idle client opened its connections");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long after = rss_bytes_of(server);
  ::close(to_child[1]);  // the child closes its connections and ends
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(from_child[0]);
  bench::check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the idle client ended cleanly");
  return (after - before) / count;
}

// A throwaway EC P-256 certificate for 127.0.0.1 (cert.pem, key.pem in `dir`).
void make_certificate(const std::filesystem::path& dir) {
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
      (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " 2>/dev/null";
  bench::check(std::system(cmd.c_str()) == 0, "make a certificate with the openssl command");
}

pid_t start_nginx(const std::filesystem::path& dir, std::uint16_t port, bool tls) {
  const auto conf = dir / "nginx.conf";
  std::ofstream out(conf);
  out << "worker_processes 1;\nworker_rlimit_nofile 16384;\ndaemon off;\npid "
      << (dir / "nginx.pid").string() << ";\nerror_log " << (dir / "error.log").string()
      << " error;\nevents { worker_connections 12000; }\n"
         "http {\n  access_log off;\n  keepalive_requests 100000000;\n"
         "  client_body_temp_path "
      << (dir / "body").string() << ";\n  proxy_temp_path " << (dir / "proxy").string()
      << ";\n  fastcgi_temp_path " << (dir / "fastcgi").string() << ";\n  uwsgi_temp_path "
      << (dir / "uwsgi").string() << ";\n  scgi_temp_path " << (dir / "scgi").string()
      << ";\n  server {\n    listen 127.0.0.1:" << port << (tls ? " ssl" : "") << ";\n";
  if (tls) {
    out << "    ssl_certificate " << (dir / "cert.pem").string() << ";\n    ssl_certificate_key "
        << (dir / "key.pem").string() << ";\n";
  }
  out << "    location / { return 200 \"Hello, world!\"; }\n  }\n}\n";
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
  if (argc == 5 && std::string_view(argv[1]) == "--idle-client")
    return idle_client(static_cast<std::uint16_t>(std::stol(argv[2])), std::stol(argv[3]),
                       std::string_view(argv[4]) == "1");
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
  const bool tls = opts.param("tls", BENCH_DEFAULT_TLS) != 0;
  if (tls) make_certificate(dir);

  std::vector<double> rates;
  std::vector<double> p99s;
  const long idle = opts.param("idle", 10000);
  long idle_bytes = 0;
  auto measure = [&](std::uint16_t port, pid_t server) {
    check_answer(port, tls);
    if (opts.runs > 0) {
      run_wrk(port, opts, 1, script, tls);  // warm-up: connections, caches, the CPU's clock
      for (int i = 0; i < opts.warmup; ++i)
        run_wrk(port, opts, seconds, script, tls);
    }
    for (int i = 0; i < opts.runs; ++i) {
      const wrk_result r = run_wrk(port, opts, seconds, script, tls);
      rates.push_back(r.requests_per_s);
      p99s.push_back(r.p99_ms);
      bench::emit_run(1e6 / r.requests_per_s * 1000.0);
    }
    check_answer(port, tls);
    if (idle > 0) idle_bytes = idle_connection_bytes(port, server, idle, tls);
  };

  if (opts.system == "weft") {
    pin_to_cpu0();
    weft::runtime_options options;
    options.worker_threads = 1;
    weft::run(
        [&]() -> weft::task<void> {
          weft::http::server_options server_options;
          if (tls) {
            weft::tls_server_options t;
            t.certificate_file = (dir / "cert.pem").string();
            t.key_file = (dir / "key.pem").string();
            server_options.tls = weft::tls_context::server(t);
          }
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
    const pid_t pid = start_nginx(dir, port, tls);
    check_answer(port, tls);
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
