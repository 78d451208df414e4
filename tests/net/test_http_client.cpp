// tests/net/test_http_client.cpp: weft::http::client against small raw HTTP/1.1 servers written
// here on weft::start_server (and one on tls_stream): URL parsing, get and post, keep-alive reuse
// (connections counted on the server), the pool's limit, a stale pooled connection, chunked and
// streamed bodies, redirects, timeouts, a server closing in the middle of a body, JSON bodies, and
// HTTPS against a test CA.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <weft/net/http/client.hpp>
#include <weft/net/http/client_json.hpp>
#include <weft/net/tls.hpp>
#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/tls_certs.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
namespace http = weft::http;

namespace {

struct server_log {
  std::atomic<int> connections{0};  // accepted so far
  std::atomic<int> active{0};       // requests being answered now
  std::atomic<int> max_active{0};
  std::atomic<int> requests{0};
  weft::event stream_gate;  // /stream sends its second part once this is set
};

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::size_t content_length(const std::string& head) {
  const std::string l = lower(head);
  const std::size_t at = l.find("\r\ncontent-length:");
  if (at == std::string::npos) return 0;
  return std::stoul(l.substr(at + 17));
}

std::string plain(int status, const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// Answers one request; returns false when the connection must end after it.
weft::task<bool> answer(server_log& log, const std::string& method, const std::string& path,
                        const std::string& body, weft::stream_reader& reader,
                        weft::stream_writer& writer) {
  if (path == "/hello") {
    writer.write(plain(200, "Hello, world!", "Content-Type: text/plain\r\n"));
  } else if (path == "/echo") {
    writer.write(plain(200, method + ":" + body));
  } else if (path == "/pause") {
    co_await weft::sleep(30ms);
    writer.write(plain(200, "paused"));
  } else if (path == "/chunked") {
    writer.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n2\r\n, \r\n"
        "6;ext=1\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n");
  } else if (path == "/stream") {
    writer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    co_await writer.drain();
    co_await log.stream_gate.wait();  // the client must see "first" before the rest exists
    writer.write("6\r\nsecond\r\n0\r\n\r\n");
  } else if (path == "/then-close") {  // keep-alive by its headers, but closed right after
    writer.write(plain(200, "bye"));
    co_return false;
  } else if (path == "/close") {
    writer.write(plain(200, "closing", "Connection: close\r\n"));
    co_return false;
  } else if (path == "/redirect") {
    writer.write(plain(302, "moved", "Location: /echo\r\n"));
  } else if (path == "/see-other") {
    writer.write(plain(303, "", "Location: hello\r\n"));
  } else if (path == "/loop") {
    writer.write(plain(307, "", "Location: /loop\r\n"));
  } else if (path == "/truncated") {
    writer.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(100, 'x'));
    co_return false;
  } else if (path == "/garbage") {
    writer.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
    co_return false;
  } else if (path == "/silent") {  // never answers; ends when the client goes away
    (void)co_await reader.read(1);
    co_return false;
  } else if (path == "/json") {
    writer.write(
        plain(200, "{\"got\":" + body + ",\"ok\":true}", "Content-Type: application/json\r\n"));
  } else {
    writer.write(plain(404, "not found"));
  }
  co_return true;
}

weft::task<void> serve(std::shared_ptr<server_log> log, weft::stream_reader reader,
                       weft::stream_writer writer) {
  log->connections.fetch_add(1);
  for (;;) {
    std::string head;
    try {
      std::string separator = "\r\n\r\n";
      head = co_await reader.read_until(std::move(separator));
    } catch (const weft::incomplete_read_error&) {
      break;  // the client closed between requests
    } catch (const weft::net_error&) {
      break;
    }
    const std::size_t sp1 = head.find(' ');
    const std::size_t sp2 = head.find(' ', sp1 + 1);
    const std::string method = head.substr(0, sp1);
    const std::string path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::size_t n = content_length(head);
    std::string body;
    if (n > 0) body = co_await reader.read_exactly(n);
    log->requests.fetch_add(1);
    const int now = log->active.fetch_add(1) + 1;
    int seen = log->max_active.load();
    while (now > seen && !log->max_active.compare_exchange_weak(seen, now)) {
    }
    const bool go_on = co_await answer(*log, method, path, body, reader, writer);
    log->active.fetch_sub(1);
    co_await writer.drain();
    if (!go_on) break;
  }
  writer.close();
  co_await writer.wait_closed();
}

struct test_server {
  std::shared_ptr<server_log> log = std::make_shared<server_log>();
  weft::server server;
  std::string base;  // "http://127.0.0.1:<port>"
};

weft::task<test_server> start_test_server() {
  test_server t;
  auto log = t.log;
  t.server = co_await weft::start_server(
      [log](weft::stream_reader r, weft::stream_writer w) {
        return serve(log, std::move(r), std::move(w));
      },
      "127.0.0.1", 0);
  t.base = "http://127.0.0.1:" + std::to_string(t.server.port());
  co_return t;
}

weft::task<void> stop(test_server& t) {
  t.server.close();
  co_await t.server.wait_closed();
}

http::client_options small_pool(std::size_t n) {
  http::client_options options;
  options.connections_per_origin = n;
  return options;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("http client: urls split into scheme host port and target") {
  const auto a = http::url::parse("http://Example.COM/a/b?c=d#frag");
  CHECK(a.scheme == "http");
  CHECK(a.host == "example.com");
  CHECK(a.port == 80);
  CHECK(a.target == "/a/b?c=d");
  CHECK(a.authority() == "example.com");
  const auto b = http::url::parse("https://[::1]:8443?x=1");
  CHECK(b.https());
  CHECK(b.host == "::1");
  CHECK(b.port == 8443);
  CHECK(b.target == "/?x=1");
  CHECK(b.origin() == "https://[::1]:8443");
  CHECK(http::url::parse("https://h").port == 443);
  CHECK(http::url::parse("http://h:8080").authority() == "h:8080");
  CHECK_THROWS_AS(http::url::parse("ftp://h/"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("http:///x"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("http://h:99999/"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("http://h:80x/"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("http://h/a b"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("http://[::1/"), http::url_error);
  CHECK_THROWS_AS(http::url::parse("example.com/x"), http::url_error);
  // Redirect locations.
  const auto base = http::url::parse("http://h:81/a/b/c?q=1");
  CHECK(base.resolve("/x?y").to_string() == "http://h:81/x?y");
  CHECK(base.resolve("d").to_string() == "http://h:81/a/b/d");
  CHECK(base.resolve("../d").to_string() == "http://h:81/a/d");
  CHECK(base.resolve("?z=2").to_string() == "http://h:81/a/b/c?z=2");
  CHECK(base.resolve("//other/p").to_string() == "http://other/p");
  CHECK(base.resolve("https://s/").to_string() == "https://s/");
  CHECK(base.resolve("/next?u=http://x/").to_string() == "http://h:81/next?u=http://x/");
  CHECK_THROWS_AS(http::url::parse("http://::1/"), http::url_error);
}

TEST_CASE("http client: get and post round trips reuse one keep-alive connection") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session;
      for (int i = 0; i < 5; ++i) {
        const http::client_response r = co_await session.get(t.base + "/hello");
        CHECK(r.status == 200);
        CHECK(r.body == "Hello, world!");
        CHECK(r.header("content-type") == "text/plain");
        CHECK(r.url == t.base + "/hello");
      }
      const http::client_response p =
          co_await session.post(t.base + "/echo", "payload", "text/plain");
      CHECK(p.body == "POST:payload");
      const http::client_response missing = co_await session.get(t.base + "/nothing");
      CHECK(missing.status == 404);  // a status is a response, not an error
      CHECK(t.log->connections.load() == 1);
      CHECK(session.connections_opened() == 1);
      CHECK(session.idle_connections() == 1);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: the pool opens at most its limit of connections to one origin") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session(small_pool(2));
      weft::task_group group;
      std::atomic<int> ok{0};
      for (int i = 0; i < 8; ++i)
        group.spawn([&session, &ok, url = t.base + "/pause"]() -> weft::task<void> {
          const http::client_response r = co_await session.get(url);
          if (r.body == "paused") ok.fetch_add(1);
        });
      co_await group.join();
      CHECK(ok.load() == 8);
      CHECK(t.log->connections.load() == 2);
      CHECK(t.log->max_active.load() == 2);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: a pooled connection the server closed is replaced not reused") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session;
      CHECK((co_await session.get(t.base + "/then-close")).body == "bye");
      co_await weft::sleep(50ms);  // the server's FIN reaches the idle connection
      CHECK((co_await session.get(t.base + "/hello")).status == 200);
      CHECK((co_await session.get(t.base + "/close")).body == "closing");
      CHECK(session.idle_connections() == 0);  // Connection: close is not pooled
      CHECK((co_await session.get(t.base + "/hello")).status == 200);
      CHECK(t.log->connections.load() == 3);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: chunked bodies are reassembled and streamed bodies arrive in parts") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session;
      CHECK((co_await session.get(t.base + "/chunked")).body == "Hello, world!");
      http::client_request req;
      req.url = t.base + "/stream";
      http::response_stream s = co_await session.stream(req);
      CHECK(s.status == 200);
      CHECK(co_await s.read_chunk() == "first");  // before the server produced the rest
      t.log->stream_gate.set();
      CHECK(co_await s.read_chunk() == "second");
      CHECK(co_await s.read_chunk() == "");
      CHECK(s.done());
      CHECK(session.idle_connections() == 1);  // back in the pool at the body's end
      CHECK((co_await session.get(t.base + "/hello")).body == "Hello, world!");
      CHECK(t.log->connections.load() == 1);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: redirects are followed only when asked and within the limit") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client no_follow;
      const http::client_response r = co_await no_follow.get(t.base + "/redirect");
      CHECK(r.status == 302);
      CHECK(r.header("location") == "/echo");
    }
    {
      http::client_options options;
      options.max_redirects = 3;
      http::client session(options);
      const http::client_response r =
          co_await session.post(t.base + "/redirect", "data", "text/plain");
      CHECK(r.status == 200);
      CHECK(r.body == "GET:");  // a 302 turns a POST into a GET without body
      CHECK(r.url == t.base + "/echo");
      const http::client_response s = co_await session.get(t.base + "/see-other");
      CHECK(s.body == "Hello, world!");
      std::string message;
      try {
        (void)co_await session.get(t.base + "/loop");
      } catch (const http::client_error& e) {
        message = e.what();
      }
      MESSAGE(message);
      CHECK(contains(message, "more than 3 redirects"));
      CHECK(t.log->connections.load() == 2);  // the redirects reused the connection
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: connect and client_request timeouts throw timeout_error") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client_options options;
      options.request_timeout = 200ms;
      http::client session(options);
      const auto started = std::chrono::steady_clock::now();
      bool timed_out = false;
      try {
        (void)co_await session.get(t.base + "/silent");
      } catch (const weft::timeout_error&) {
        timed_out = true;
      }
      CHECK(timed_out);
      CHECK(std::chrono::steady_clock::now() - started < 5s);
      CHECK(session.idle_connections() == 0);  // the half-done connection was closed
      CHECK((co_await session.get(t.base + "/hello")).status == 200);
    }
    {
      weft_test::black_hole hole;
      http::client_options options;
      options.connect_timeout = 100ms;
      http::client session(options);
      bool timed_out = false;
      try {
        (void)co_await session.get("http://" + hole.address().to_string() + "/");
      } catch (const weft::timeout_error&) {
        timed_out = true;
      }
      CHECK(timed_out);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: a server closing mid-body or breaking HTTP is a clear client_error") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session;
      std::string message;
      try {
        (void)co_await session.get(t.base + "/truncated");
      } catch (const http::client_error& e) {
        message = e.what();
      }
      MESSAGE(message);
      CHECK(contains(message, "GET " + t.base + "/truncated"));
      CHECK(contains(message, "in the middle of the body (after 100 bytes)"));
      message.clear();
      try {
        (void)co_await session.get(t.base + "/garbage");
      } catch (const http::client_error& e) {
        message = e.what();
      }
      MESSAGE(message);
      CHECK(contains(message, "not valid HTTP/1.1"));
      message.clear();
      try {
        (void)co_await session.get("http://127.0.0.1:1/");
      } catch (const weft::connection_refused& e) {
        message = e.what();
      }
      CHECK_FALSE(message.empty());
      http::client_options small;
      small.max_body_bytes = 5;
      http::client limited(small);
      message.clear();
      try {
        (void)co_await limited.get(t.base + "/hello");
      } catch (const http::client_error& e) {
        message = e.what();
      }
      CHECK(contains(message, "larger than max_body_bytes"));
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("http client: json bodies go out and come back through nlohmann json") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto t = co_await start_test_server();
    {
      http::client session;
      nlohmann::json doc;
      doc["name"] = "weft";
      doc["n"] = 3;
      const nlohmann::json reply = co_await http::post_json(session, t.base + "/json", doc);
      CHECK(reply["ok"] == true);
      CHECK(reply["got"]["name"] == "weft");
      CHECK(reply["got"]["n"] == 3);
      bool refused = false;
      try {
        (void)co_await http::get_json(session, t.base + "/nothing");
      } catch (const http::client_error&) {
        refused = true;
      }
      CHECK(refused);
    }
    co_await stop(t);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

namespace {

// A minimal HTTPS server: answers every request on a connection with "secure" until the client
// goes away.
weft::task<void> https_serve(weft::tcp_stream tcp, weft::tls_context context,
                             std::shared_ptr<server_log> log) {
  log->connections.fetch_add(1);
  try {
    auto tls = co_await weft::tls_stream::accept(std::move(tcp), context);
    std::string in;
    std::array<char, 4096> buffer{};
    for (;;) {
      const std::size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        const std::size_t n = co_await tls.read_some(buffer);
        if (n == 0) break;
        in.append(buffer.data(), n);
        continue;
      }
      in.erase(0, end + 4);
      co_await tls.write_all(plain(200, "secure"));
    }
  } catch (const weft::net_error&) {
  }
}

weft::task<void> https_accept(weft::tcp_listener& listener, weft::tls_context context,
                              std::shared_ptr<server_log> log) {
  weft::task_group group;
  try {
    for (;;)
      group.spawn(https_serve, co_await listener.accept(), context, log);
  } catch (const weft::cancelled_error&) {
  }
  group.cancel();
  co_await group.join();
}

}  // namespace

TEST_CASE("http client: https get verifies the test CA and reuses the TLS connection") {
  weft_test::watchdog dog(30s);
  const auto ca = weft_test::make_ca("weft test CA");
  const auto leaf = weft_test::issue(ca, "localhost", {"DNS:localhost"});
  auto main_task = [&]() -> weft::task<void> {
    weft::tls_server_options server_options;
    server_options.certificate_pem = leaf.certificate_pem;
    server_options.key_pem = leaf.key_pem;
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto log = std::make_shared<server_log>();
    auto acceptor = weft::spawn(https_accept, std::ref(listener),
                                weft::tls_context::server(server_options), log);
    const std::string url =
        "https://localhost:" + std::to_string(listener.local_address().port()) + "/";
    {
      weft::tls_client_options trust;
      trust.use_system_store = false;
      trust.ca_pem = ca.certificate_pem;
      http::client_options options;
      options.tls = weft::tls_context::client(trust);
      http::client session(options);
      CHECK((co_await session.get(url)).body == "secure");
      CHECK((co_await session.get(url)).body == "secure");
      CHECK(session.connections_opened() == 1);
    }
    {
      http::client untrusting;  // the system store does not know the test CA
      std::string message;
      try {
        (void)co_await untrusting.get(url);
      } catch (const weft::tls_error& e) {
        message = e.what();
      }
      CHECK(contains(message, "certificate verify failed"));
    }
    acceptor.cancel();
    co_await acceptor;
  };
  weft::run(main_task(), {.worker_threads = 2});
}
