// tests/net/test_udp.cpp: weft::udp_socket on loopback: datagram echo, connected mode, truncation
// and cancellation of a receive.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "support/net.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using weft_test::loopback;

TEST_CASE("udp: datagrams sent to an echo socket come back whole from the right sender") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto server = weft::udp_socket::bind(loopback());
    const auto server_address = server.local_address();
    auto echo = weft::spawn(
        [](weft::udp_socket& s) -> weft::task<void> {
          std::array<char, 2048> buffer{};
          for (int i = 0; i < 3; ++i) {
            auto d = co_await s.receive_from(buffer);
            co_await s.send_to(std::string_view(buffer.data(), d.size), d.from);
          }
        },
        std::ref(server));
    auto client = weft::udp_socket::bind(loopback());
    std::array<char, 2048> buffer{};
    std::vector<std::string> messages;  // not a braced list: GCC 12 and coroutines (net.hpp)
    messages.emplace_back("one");
    messages.emplace_back("two");
    messages.emplace_back(1400, 'x');
    for (const std::string& message : messages) {
      CHECK(co_await client.send_to(message, server_address) == message.size());
      auto d = co_await client.receive_from(buffer);
      CHECK(std::string(buffer.data(), d.size) == message);
      CHECK(d.from == server_address);
      CHECK_FALSE(d.truncated);
    }
    co_await echo;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("udp: a connected socket sends and receives without addresses") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto a = weft::udp_socket::bind(loopback());
    auto b = weft::udp_socket::bind(loopback());
    a.connect(b.local_address());
    b.connect(a.local_address());
    co_await a.send("hello");
    std::array<char, 64> buffer{};
    const std::size_t n = co_await b.receive(buffer);
    CHECK(std::string(buffer.data(), n) == "hello");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("udp: a datagram longer than the buffer is reported truncated") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto a = weft::udp_socket::bind(loopback());
    auto b = weft::udp_socket::bind(loopback());
    co_await a.send_to("0123456789", b.local_address());
    std::array<char, 4> buffer{};
    auto d = co_await b.receive_from(buffer);
    CHECK(d.truncated);
    CHECK(d.size == 4);
    CHECK(std::string(buffer.data(), 4) == "0123");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("udp: a receive cancelled while waiting takes no datagram") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    auto a = weft::udp_socket::bind(loopback());
    auto b = weft::udp_socket::bind(loopback());
    std::array<char, 64> buffer{};
    auto waiting = weft::spawn(
        [](weft::udp_socket& s, std::array<char, 64>& buf) { return s.receive_from(buf); },
        std::ref(b), std::ref(buffer));
    co_await weft::sleep(30ms);
    waiting.cancel();
    CHECK_THROWS_AS(co_await waiting, weft::cancelled_error);
    co_await a.send_to("after", b.local_address());
    auto d = co_await b.receive_from(buffer);
    CHECK(std::string(buffer.data(), d.size) == "after");
  };
  weft::run(main_task(), {.worker_threads = 2});
}
