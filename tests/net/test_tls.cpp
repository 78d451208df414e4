// tests/net/test_tls.cpp: weft::tls_stream and weft::tls_context over loopback TCP, with a CA and
// certificates made at test time: an echo round trip with ALPN and close_notify, verification
// failures (wrong host, untrusted CA, self-signed) with clear messages, a client that sends
// garbage, a peer that closes without close_notify, cancellation in the middle of a read and of a
// handshake, and a reader and a writer on one stream at once.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <string>

#include <weft/net/tls.hpp>
#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/tls_certs.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

struct pki {
  weft_test::credentials ca = weft_test::make_ca("weft test CA");
  weft_test::credentials leaf =
      weft_test::issue(ca, "localhost", {"DNS:localhost", "IP:127.0.0.1"});
  weft_test::credentials other_ca = weft_test::make_ca("another CA");
};

const pki& certs() {
  static const pki p;
  return p;
}

weft::tls_context server_context(std::vector<std::string> alpn = {}) {
  weft::tls_server_options options;
  options.certificate_pem = certs().leaf.certificate_pem;
  options.key_pem = certs().leaf.key_pem;
  options.alpn = std::move(alpn);
  return weft::tls_context::server(options);
}

weft::tls_context client_context(const std::string& ca_pem, std::vector<std::string> alpn = {}) {
  weft::tls_client_options options;
  options.use_system_store = false;
  options.ca_pem = ca_pem;
  options.alpn = std::move(alpn);
  return weft::tls_context::client(options);
}

// Accepts one connection, runs the TLS handshake and echoes until close_notify.
weft::task<void> echo_one(weft::tcp_listener& listener, weft::tls_context context) {
  auto tls = co_await weft::tls_stream::accept(co_await listener.accept(), context);
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await tls.read_some(buffer);
    if (n == 0) break;
    co_await tls.write_all(std::string_view(buffer.data(), n));
  }
  co_await tls.shutdown();
}

// Accepts one connection and records how its handshake ended ("" if it succeeded).
weft::task<std::string> accept_outcome(weft::tcp_listener& listener, weft::tls_context context) {
  auto tcp = co_await listener.accept();
  try {
    auto tls = co_await weft::tls_stream::accept(std::move(tcp), context);
    std::array<char, 64> buffer{};
    (void)co_await tls.read_some(buffer);
    co_return "";
  } catch (const weft::tls_error& e) {
    co_return e.what();
  }
}

weft::task<weft::tls_stream> connect_tls(const weft::tcp_listener& listener,
                                         const weft::tls_context& context, std::string name) {
  auto tcp = co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
  co_return co_await weft::tls_stream::connect(std::move(tcp), context, std::move(name));
}

// The message of the tls_error that connecting throws ("" if it connects).
weft::task<std::string> connect_failure(const weft::tcp_listener& listener,
                                        weft::tls_context context, std::string name) {
  try {
    auto tls = co_await connect_tls(listener, context, std::move(name));
    co_return "";
  } catch (const weft::tls_error& e) {
    co_return e.what();
  }
}

// ALPN lists built outside coroutines (GCC 12 rejects a braced list's array inside one).
std::vector<std::string> alpn_server() { return {"http/1.1"}; }
std::vector<std::string> alpn_client() { return {"h2", "http/1.1"}; }

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("tls: an echo round trip negotiates ALPN and ends with close_notify") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto server = weft::spawn(echo_one, std::ref(listener), server_context(alpn_server()));
    auto tls = co_await connect_tls(
        listener, client_context(certs().ca.certificate_pem, alpn_client()), "localhost");
    CHECK(tls.alpn_protocol() == "http/1.1");
    CHECK(tls.version() == "TLSv1.3");
    std::string sent;
    for (int i = 0; i < 2000; ++i)
      sent += "line " + std::to_string(i) + "\n";  // about 20 KB: several records
    co_await tls.write_all(sent);
    std::string got;
    std::array<char, 1000> buffer{};
    while (got.size() < sent.size()) {
      const std::size_t n = co_await tls.read_some(buffer);
      REQUIRE(n > 0);
      got.append(buffer.data(), n);
    }
    CHECK(got == sent);
    co_await tls.shutdown();
    CHECK(co_await tls.read_some(buffer) == 0);  // the server's close_notify
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a client verifies an IP literal against the certificate's IP addresses") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto server = weft::spawn(echo_one, std::ref(listener), server_context());
    auto tls =
        co_await connect_tls(listener, client_context(certs().ca.certificate_pem), "127.0.0.1");
    co_await tls.write_all("ping");
    std::array<char, 16> buffer{};
    CHECK(std::string(buffer.data(), co_await tls.read_some(buffer)) == "ping");
    co_await tls.shutdown();
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a wrong host name fails verification with a clear message on both sides") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto server = weft::spawn(accept_outcome, std::ref(listener), server_context());
    const std::string message = co_await connect_failure(
        listener, client_context(certs().ca.certificate_pem), "example.org");
    MESSAGE(message);
    CHECK(contains(message, "TLS handshake with example.org"));
    CHECK(contains(message, "certificate verify failed: hostname mismatch"));
    const std::string server_side = co_await server;
    MESSAGE(server_side);
    CHECK(contains(server_side, "TLS handshake with 127.0.0.1"));  // the client's alert
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a certificate from an untrusted CA fails verification") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    {
      auto server = weft::spawn(accept_outcome, std::ref(listener), server_context());
      const std::string message = co_await connect_failure(
          listener, client_context(certs().other_ca.certificate_pem), "localhost");
      MESSAGE(message);
      CHECK(contains(message, "certificate verify failed: unable to get local issuer certificate"));
      CHECK_FALSE((co_await server).empty());
    }
    {  // the system store does not know the test CA either (the default client context)
      auto server = weft::spawn(accept_outcome, std::ref(listener), server_context());
      const std::string message =
          co_await connect_failure(listener, weft::tls_context::client(), "localhost");
      CHECK(contains(message, "certificate verify failed"));
      CHECK_FALSE((co_await server).empty());
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a self-signed server certificate is refused unless verification is skipped") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    weft::tls_server_options self_signed;
    self_signed.certificate_pem = certs().other_ca.certificate_pem;
    self_signed.key_pem = certs().other_ca.key_pem;
    const auto context = weft::tls_context::server(self_signed);
    {
      auto server = weft::spawn(accept_outcome, std::ref(listener), context);
      weft::tls_client_options trusting_system_only;
      const std::string message = co_await connect_failure(
          listener, weft::tls_context::client(trusting_system_only), "localhost");
      MESSAGE(message);
      CHECK(contains(message, "certificate verify failed: self-signed certificate"));
      (void)co_await server;
    }
    {
      auto server = weft::spawn(echo_one, std::ref(listener), context);
      weft::tls_client_options insecure;
      insecure.dangerously_skip_verification = true;
      auto tls = co_await connect_tls(listener, weft::tls_context::client(insecure), "whatever");
      co_await tls.write_all("x");
      std::array<char, 4> buffer{};
      CHECK(co_await tls.read_some(buffer) == 1);
      co_await tls.shutdown();
      co_await server;
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a client sending garbage fails only its own handshake on the server") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto bad = weft::spawn(accept_outcome, std::ref(listener), server_context());
    auto raw = co_await weft::tcp_stream::connect(weft_test::addresses(listener.local_address()));
    co_await raw.write_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n and more garbage \x01\x02\x03");
    const std::string message = co_await bad;
    MESSAGE(message);
    CHECK(contains(message, "weft: TLS handshake with 127.0.0.1"));
    // The server answered with an alert and the stream is gone: the raw client sees the end.
    std::array<char, 256> buffer{};
    std::size_t total = 0;
    for (std::size_t n = 1; n != 0; total += n) {
      try {
        n = co_await raw.read_some(buffer);
      } catch (const weft::connection_reset&) {
        n = 0;
      }
    }
    CHECK(total < buffer.size());
    // The next, well-behaved client is served.
    auto good = weft::spawn(echo_one, std::ref(listener), server_context());
    auto tls =
        co_await connect_tls(listener, client_context(certs().ca.certificate_pem), "localhost");
    co_await tls.write_all("ok");
    CHECK(co_await tls.read_some(buffer) == 2);
    co_await tls.shutdown();
    co_await good;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a peer that closes without close_notify is an error not a clean end") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto server = weft::spawn(
        [](weft::tcp_listener& l, weft::tls_context context) -> weft::task<void> {
          auto tls = co_await weft::tls_stream::accept(co_await l.accept(), context);
          co_await tls.write_all("partial");
          tls.close();  // no close_notify
        },
        std::ref(listener), server_context());
    auto tls =
        co_await connect_tls(listener, client_context(certs().ca.certificate_pem), "localhost");
    std::array<char, 64> buffer{};
    std::string got;
    std::string message;
    try {
      for (;;) {
        const std::size_t n = co_await tls.read_some(buffer);
        if (n == 0) break;
        got.append(buffer.data(), n);
      }
    } catch (const weft::tls_error& e) {
      message = e.what();
    }
    CHECK(got == "partial");  // what arrived was delivered first
    MESSAGE(message);
    CHECK(contains(message, "without close_notify"));
    CHECK_FALSE(tls.is_usable());
    message.clear();
    try {
      co_await tls.write_all("more");
    } catch (const weft::tls_error& e) {
      message = e.what();
    }
    CHECK(contains(message, "unusable"));
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a read cancelled by a timeout loses no bytes and the stream stays usable") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    weft::event go;
    auto server = weft::spawn(
        [](weft::tcp_listener& l, weft::tls_context context,
           weft::event& start) -> weft::task<void> {
          auto tls = co_await weft::tls_stream::accept(co_await l.accept(), context);
          co_await start.wait();
          co_await tls.write_all("after the timeout");
          co_await tls.shutdown();
        },
        std::ref(listener), server_context(), std::ref(go));
    auto tls =
        co_await connect_tls(listener, client_context(certs().ca.certificate_pem), "localhost");
    std::array<char, 64> buffer{};
    bool timed_out = false;
    try {
      (void)co_await weft::timeout(50ms, tls.read_some(buffer));
    } catch (const weft::timeout_error&) {
      timed_out = true;
    }
    CHECK(timed_out);
    CHECK(tls.is_usable());
    go.set();
    std::string got;
    for (;;) {
      const std::size_t n = co_await tls.read_some(buffer);
      if (n == 0) break;
      got.append(buffer.data(), n);
    }
    CHECK(got == "after the timeout");
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: a handshake cancelled by a timeout throws timeout_error and leaks nothing") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    // A server that accepts TCP and never speaks TLS.
    auto silent = weft::spawn([](weft::tcp_listener& l) { return l.accept(); }, std::ref(listener));
    bool timed_out = false;
    try {
      auto tls = co_await weft::timeout(
          100ms, connect_tls(listener, client_context(certs().ca.certificate_pem), "localhost"));
    } catch (const weft::timeout_error&) {
      timed_out = true;
    }
    CHECK(timed_out);
    auto peer = co_await silent;
    std::array<char, 512> buffer{};
    std::size_t total = 0;
    for (std::size_t n = 1; n != 0; total += n)
      n = co_await peer.read_some(buffer);  // the ClientHello, then the end: the client closed
    CHECK(total > 0);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: one task reads while another writes a megabyte on the same stream") {
  weft_test::watchdog dog(60s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto server = weft::spawn(echo_one, std::ref(listener), server_context());
    auto tls =
        co_await connect_tls(listener, client_context(certs().ca.certificate_pem), "localhost");
    std::string data(1 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<char>('a' + (i * 7919) % 26);
    auto writer = weft::spawn(
        [](weft::tls_stream& s, const std::string& d) -> weft::task<void> {
          for (std::size_t at = 0; at < d.size(); at += 10000)
            co_await s.write_all(std::string_view(d).substr(at, 10000));
        },
        std::ref(tls), std::cref(data));
    std::string got;
    std::vector<char> buffer(8192);
    while (got.size() < data.size()) {
      const std::size_t n = co_await tls.read_some(buffer);
      REQUIRE(n > 0);
      got.append(buffer.data(), n);
    }
    co_await writer;
    CHECK(got == data);
    co_await tls.shutdown();
    co_await server;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("tls: bad certificate input is a tls_error naming what failed") {
  weft::tls_server_options options;
  options.certificate_pem = "not a certificate";
  options.key_pem = certs().leaf.key_pem;
  CHECK_THROWS_WITH_AS(weft::tls_context::server(options),
                       doctest::Contains("reading certificate_pem"), weft::tls_error);
  options.certificate_pem = certs().leaf.certificate_pem;
  options.key_pem = certs().ca.key_pem;
  CHECK_THROWS_WITH_AS(weft::tls_context::server(options),
                       doctest::Contains("key_pem: key values mismatch"), weft::tls_error);
  weft::tls_client_options client;
  client.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_AS(weft::tls_context::client(client), weft::tls_error);
}
