// tests/test_latch.cpp: weft::latch: waiters are released exactly when the count reaches zero,
// from tasks or foreign threads; an open latch returns at once; counting below zero is refused;
// a cancelled waiter leaves with cancelled_error and does not disturb the count.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

TEST_CASE("latch: waiters are released when the last worker counts down") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  std::atomic<int> checked_in{0};
  const int seen = rt.block_on([&]() -> weft::task<int> {
    weft::latch ready(3);
    std::vector<weft::join_handle<void>> workers;
    for (int i = 0; i < 3; ++i) {
      workers.push_back(weft::spawn([&ready, &checked_in, i]() -> weft::task<> {
        co_await weft::sleep(std::chrono::milliseconds(5 * (i + 1)));
        ++checked_in;
        ready.count_down();
      }));
    }
    co_await ready.wait();
    const int at_release = checked_in.load();
    for (auto& w : workers)
      co_await w;
    co_return at_release;
  }());
  CHECK(seen == 3);
}

TEST_CASE("latch: an open latch returns at once and try_wait reports it") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 1});
  rt.block_on([]() -> weft::task<> {
    weft::latch zero(0);
    CHECK(zero.try_wait());
    co_await zero.wait();
    weft::latch two(2);
    CHECK_FALSE(two.try_wait());
    two.count_down(2);
    CHECK(two.try_wait());
    co_await two.wait();
  }());
}

TEST_CASE("latch: a foreign thread can count down") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  weft::latch done(1);
  std::thread helper([&] {
    std::this_thread::sleep_for(10ms);
    done.count_down();
  });
  rt.block_on([&]() -> weft::task<> { co_await done.wait(); }());
  helper.join();
  CHECK(done.try_wait());
}

TEST_CASE("latch: counting below zero throws and leaves the count unchanged") {
  weft::latch l(2);
  CHECK_THROWS_AS(l.count_down(3), std::logic_error);
  CHECK_FALSE(l.try_wait());
  l.count_down(2);
  CHECK(l.try_wait());
  CHECK_THROWS_AS(l.count_down(), std::logic_error);
  CHECK_THROWS_AS(weft::latch(-1), std::invalid_argument);
}

TEST_CASE("latch: a cancelled waiter leaves with cancelled_error and the latch still opens") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  const bool ok = rt.block_on([]() -> weft::task<bool> {
    weft::latch gate(1);
    auto waiter = weft::spawn([&gate]() -> weft::task<> { co_await gate.wait(); });
    auto other = weft::spawn([&gate]() -> weft::task<> { co_await gate.wait(); });
    co_await weft::sleep(5ms);
    waiter.cancel();
    bool cancelled = false;
    try {
      co_await waiter;
    } catch (const weft::cancelled_error&) {
      cancelled = true;
    }
    gate.count_down();
    co_await other;  // released by the count reaching zero
    co_return cancelled&& gate.try_wait();
  }());
  CHECK(ok);
}
