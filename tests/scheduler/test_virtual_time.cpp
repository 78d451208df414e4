// tests/test_virtual_time.cpp: runtime_options::virtual_time. Time stands still while tasks are
// runnable and jumps to the next deadline when the pool is idle, so long sleeps and timeouts run
// instantly and in deadline order; weft::now() reads the virtual clock.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::runtime_options virtual_options() {
  weft::runtime_options options;
  options.worker_threads = 2;
  options.virtual_time = true;
  return options;
}

weft::task<int> sleep_hours(int hours) {
  co_await weft::sleep(std::chrono::hours(hours));
  co_return hours;
}

double hours_since(weft::clock::time_point start) {
  return std::chrono::duration<double, std::ratio<3600>>(weft::now() - start).count();
}

}  // namespace

TEST_CASE("virtual time: hours of sleeping finish at once in real time") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_options());
  const auto real_start = std::chrono::steady_clock::now();
  const double virtual_hours = rt.block_on([]() -> weft::task<double> {
    const auto start = weft::now();
    auto [a, b, c] = co_await weft::gather(sleep_hours(3), sleep_hours(1), sleep_hours(2));
    CHECK(a + b + c == 6);
    co_return hours_since(start);
  }());
  CHECK(virtual_hours >= 3.0);
  CHECK(virtual_hours < 3.01);
  CHECK(std::chrono::steady_clock::now() - real_start < 5s);
}

TEST_CASE("virtual time: timers fire in deadline order and never early") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_options());
  std::mutex mutex;
  std::vector<int> order;
  rt.block_on([&]() -> weft::task<> {
    std::vector<weft::join_handle<void>> handles;
    for (int minutes : {50, 10, 40, 20, 30}) {
      handles.push_back(weft::spawn([&, minutes]() -> weft::task<> {
        const auto start = weft::now();
        co_await weft::sleep(std::chrono::minutes(minutes));
        CHECK(weft::now() - start >= std::chrono::minutes(minutes));
        std::lock_guard lock(mutex);
        order.push_back(minutes);
      }));
    }
    for (auto& handle : handles) co_await handle;
  }());
  CHECK(order == std::vector<int>{10, 20, 30, 40, 50});
}

TEST_CASE("virtual time: a timeout expires on the virtual clock") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_options());
  const double at = rt.block_on([]() -> weft::task<double> {
    const auto start = weft::now();
    try {
      co_await weft::timeout(30min, sleep_hours(1));
    } catch (const weft::timeout_error&) {
      co_return hours_since(start);
    }
    co_return -1.0;
  }());
  CHECK(at >= 0.5);
  CHECK(at < 0.51);
}

TEST_CASE("virtual time: the clock does not move while a task is runnable") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_options());
  const bool still = rt.block_on([]() -> weft::task<bool> {
    // A long-sleeping task is pending, but this task keeps yielding: the pool is never idle, so
    // the virtual clock must not jump to the sleeper's deadline.
    auto sleeper = weft::spawn(sleep_hours(5));
    const auto start = weft::now();
    for (int i = 0; i < 1000; ++i) co_await weft::yield_now();
    const bool unchanged = weft::now() == start;
    sleeper.cancel();
    try {
      co_await sleeper;
    } catch (const weft::cancelled_error&) {
    }
    co_return unchanged;
  }());
  CHECK(still);
}

TEST_CASE("virtual time: a sleep of hours::max() runs the clock to its end without overflowing") {
  // The idle pool lets the virtual clock jump, window by window of the timer wheel, to the tick of
  // clock::time_point::max() (rounded up past it); weft::now() saturates there instead of
  // overflowing epoch + ticks (detail/duration.hpp). Meanwhile a short timeout still fires first.
  weft_test::watchdog dog(20s, "running the virtual clock to its end");
  weft::runtime rt(virtual_options());
  rt.block_on([]() -> weft::task<> {
    const auto start = weft::now();
    bool timed_out = false;
    try {
      co_await weft::timeout(1h, sleep_hours(1000));
    } catch (const weft::timeout_error&) {
      timed_out = true;
    }
    CHECK(timed_out);
    CHECK(weft::now() - start == 1h);
    co_await weft::sleep(std::chrono::hours::max());
    CHECK(weft::now() == weft::clock::time_point::max());
  }());
}
