// tests/net/test_dns.cpp: weft::resolve on c-ares: localhost, a name from a test hosts file
// ($CARES_HOSTS), numeric hosts without a lookup, an unknown name answered NXDOMAIN by a fake DNS
// server on loopback, a server that never answers (timeout, cancellation), and connect by name.
// No test sends a packet beyond loopback: every lookup that reaches DNS goes to the fake server.
#include <doctest/doctest.h>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// A DNS server on loopback UDP that answers every query with NXDOMAIN, or never answers.
class fake_dns {
 public:
  explicit fake_dns(bool answer)
      : answer_(answer), socket_(weft::udp_socket::bind(weft_test::loopback())) {
    servers_ = socket_.local_address().to_string();
  }
  [[nodiscard]] const char* servers() const { return servers_.c_str(); }
  [[nodiscard]] int queries() const { return queries_.load(); }

  weft::task<void> serve() {
    std::array<char, 512> query{};
    for (;;) {
      auto d = co_await socket_.receive_from(query);
      ++queries_;
      if (!answer_ || d.size < 12) continue;
      // The header with QR (response), RA and RCODE 3 (NXDOMAIN), then the question section.
      std::size_t end = 12;
      while (end < d.size && query[end] != 0)
        end += static_cast<unsigned char>(query[end]) + 1;
      end += 5;  // the root label, QTYPE, QCLASS
      if (end > d.size) continue;
      std::string reply(query.data(), end);
      reply[2] = static_cast<char>(0x80 | (query[2] & 0x79));
      reply[3] = static_cast<char>(0x83);
      for (int i = 6; i < 12; ++i)
        reply[static_cast<std::size_t>(i)] = 0;  // no records
      co_await socket_.send_to(reply, d.from);
    }
  }

 private:
  bool answer_;
  weft::udp_socket socket_;
  std::string servers_;
  std::atomic<int> queries_{0};  // read by the test while the server task counts
};

bool contains(const std::vector<weft::socket_address>& list, const std::string& host,
              std::uint16_t port) {
  for (const auto& a : list) {
    if (a.host() == host && a.port() == port) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("dns: localhost resolves from the hosts file") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    fake_dns dns(true);
    auto server = weft::spawn(&fake_dns::serve, &dns);
    const auto list = co_await weft::resolve("localhost", 8080, {.servers = dns.servers()});
    CHECK(contains(list, "127.0.0.1", 8080));
    server.cancel();
    CHECK_THROWS_AS(co_await server, weft::cancelled_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("dns: a name from the hosts file named by CARES_HOSTS resolves") {
  weft_test::watchdog dog(20s);
  char path[] = "/tmp/weft-test-hosts-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string hosts =
      "127.0.0.42 weft-test-host.example weft-alias\n::1 weft-test-host.example\n";
  REQUIRE(::write(fd, hosts.data(), hosts.size()) == static_cast<ssize_t>(hosts.size()));
  ::close(fd);
  REQUIRE(::setenv("CARES_HOSTS", path, 1) == 0);  // before the runtime's threads exist
  auto main_task = []() -> weft::task<void> {
    fake_dns dns(true);
    auto server = weft::spawn(&fake_dns::serve, &dns);
    const auto both =
        co_await weft::resolve("weft-test-host.example", 443, {.servers = dns.servers()});
    CHECK(contains(both, "127.0.0.42", 443));
    CHECK(contains(both, "::1", 443));
    const auto v4 =
        co_await weft::resolve("weft-alias", 1, {.family = AF_INET, .servers = dns.servers()});
    REQUIRE(v4.size() == 1);
    CHECK(v4[0].host() == "127.0.0.42");
    CHECK(dns.queries() == 0);  // the hosts file answered; DNS was not asked
    server.cancel();
    CHECK_THROWS_AS(co_await server, weft::cancelled_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
  ::unsetenv("CARES_HOSTS");
  ::unlink(path);
}

TEST_CASE("dns: numeric hosts are parsed without a lookup") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    // An unusable server list: any lookup would fail, so success proves there was none.
    const auto v4 = co_await weft::resolve("192.0.2.7", 53, {.servers = "127.0.0.1:1"});
    REQUIRE(v4.size() == 1);
    CHECK(v4[0].to_string() == "192.0.2.7:53");
    const auto v6 = co_await weft::resolve("[2001:db8::1]", 80, {.servers = "127.0.0.1:1"});
    REQUIRE(v6.size() == 1);
    CHECK(v6[0].to_string() == "[2001:db8::1]:80");
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("dns: an unknown name is host_not_found with c-ares' reason") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    fake_dns dns(true);
    auto server = weft::spawn(&fake_dns::serve, &dns);
    try {
      (void)co_await weft::resolve("no-such-host.weft-test.example", 80,
                                   {.servers = dns.servers()});
      FAIL("an unknown name resolved");
    } catch (const weft::host_not_found& e) {
      const std::string what = e.what();
      CHECK(what.find("no-such-host.weft-test.example") != std::string::npos);
      CHECK(what.find("not found") != std::string::npos);
      CHECK(e.code().category() == weft::dns_category());
    }
    CHECK(dns.queries() >= 1);
    server.cancel();
    CHECK_THROWS_AS(co_await server, weft::cancelled_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("dns: a lookup cancelled while the server is silent ends at once") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    fake_dns dns(false);
    auto server = weft::spawn(&fake_dns::serve, &dns);
    auto lookup = weft::spawn(
        [](const char* servers) {
          return weft::resolve("silent.weft-test.example", 80, {.servers = servers});
        },
        dns.servers());
    co_await weft::sleep(100ms);
    CHECK(dns.queries() >= 1);  // the query went out and waits for its answer
    const auto start = std::chrono::steady_clock::now();
    lookup.cancel();
    CHECK_THROWS_AS((void)co_await lookup, weft::cancelled_error);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    server.cancel();
    CHECK_THROWS_AS(co_await server, weft::cancelled_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("dns: a lookup past its timeout is timeout_error") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    fake_dns dns(false);
    auto server = weft::spawn(&fake_dns::serve, &dns);
    CHECK_THROWS_AS((void)co_await weft::resolve("silent.weft-test.example", 80,
                                                 {.timeout = 300ms, .servers = dns.servers()}),
                    weft::timeout_error);
    server.cancel();
    CHECK_THROWS_AS(co_await server, weft::cancelled_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("dns: tcp_stream connect resolves a name") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto listener = weft::tcp_listener::bind(weft_test::loopback());
    auto accepted =
        weft::spawn([](weft::tcp_listener& l) { return l.accept(); }, std::ref(listener));
    auto stream = co_await weft::tcp_stream::connect("localhost", listener.local_address().port());
    CHECK(stream.peer_address() == listener.local_address());
    (void)co_await accepted;
  };
  weft::run(main_task(), {.worker_threads = 2});
}
