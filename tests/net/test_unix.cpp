// tests/net/test_unix.cpp: weft::unix_stream and weft::unix_listener: echo on a path and on an
// abstract name, half-close, refusal and a taken path.
#include <doctest/doctest.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <string>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<std::string> read_to_end(weft::stream_socket& s) {
  std::string all;
  std::array<char, 1024> buffer{};
  for (;;) {
    const std::size_t n = co_await s.read_some(buffer);
    if (n == 0) co_return all;
    all.append(buffer.data(), n);
  }
}

// Accepts one connection and echoes it until the peer half-closes.
weft::task<void> echo_once(weft::unix_listener& listener) {
  auto conn = co_await listener.accept();
  const std::string all = co_await read_to_end(conn);
  co_await conn.write_all(all);
}

weft::task<std::string> round_trip(std::string path, std::string message) {
  auto listener = weft::unix_listener::bind(path);
  auto server = weft::spawn(echo_once, std::ref(listener));
  auto client = co_await weft::unix_stream::connect(path);
  co_await client.write_all(message);
  client.shutdown_write();  // half-close: the server sees the end, then answers
  std::string answer = co_await read_to_end(client);
  co_await server;
  co_return answer;
}

std::string temp_path() { return "/tmp/weft-test-" + std::to_string(::getpid()) + ".sock"; }

}  // namespace

TEST_CASE("unix: a stream on a path echoes every byte after a half-close") {
  weft_test::watchdog dog(20s);
  const std::string path = temp_path();
  ::unlink(path.c_str());
  const std::string message(100000, 'u');
  CHECK(weft::run(round_trip(path, message), {.worker_threads = 2}) == message);
  ::unlink(path.c_str());
}

TEST_CASE("unix: an abstract name needs no file") {
  weft_test::watchdog dog(20s);
  const std::string name = "@weft-test-" + std::to_string(::getpid());
  CHECK(weft::run(round_trip(name, "abstract"), {.worker_threads = 2}) == "abstract");
  CHECK(::access(name.c_str(), F_OK) != 0);
}

TEST_CASE("unix: connecting to a name nobody listens on is connection_refused") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    const std::string name = "@weft-test-nobody-" + std::to_string(::getpid());
    CHECK_THROWS_AS((void)co_await weft::unix_stream::connect(name), weft::connection_refused);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("unix: binding a path in use is address_in_use") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<void> {
    const std::string path = temp_path();
    ::unlink(path.c_str());
    auto first = weft::unix_listener::bind(path);
    CHECK(first.local_address().host() == path);
    CHECK_THROWS_AS(weft::unix_listener::bind(path), weft::address_in_use);
    ::unlink(path.c_str());
    co_return;
  };
  weft::run(main_task(), {.worker_threads = 1});
}
