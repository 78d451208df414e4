// tests/scheduler/test_fork_join.cpp: weft::fork_join (fork_join.hpp), the fork-join path: results
// come back in order for the tuple, array and vector forms, deep recursion computes the right sums
// on several workers (the hand-off chain, steals and the countdown), children that suspend are
// joined, the first failure is rethrown after all children finished and cancels the siblings,
// cancelling the caller cancels every child, shutdown with children suspended frees everything, and
// awaiting outside a worker is refused.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include <weft/scheduler/fork_join.hpp>
#include <weft/weft.hpp>

#include "support/fib_reference.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<std::uint64_t> fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto [a, b] = co_await weft::fork_join(fib(n - 1), fib(n - 2));
  co_return a + b;
}

using weft_test::fib_reference;

// Sum of [num, num + size) by a tree of fan-out 10, the vector form.
weft::task<std::uint64_t> tree_sum(std::uint64_t num, std::uint64_t size) {
  if (size == 1) co_return num;
  const std::uint64_t child = size / 10;
  std::vector<weft::task<std::uint64_t>> children;
  for (std::uint64_t i = 0; i < 10; ++i)
    children.push_back(tree_sum(num + i * child, child));
  std::uint64_t sum = 0;
  for (std::uint64_t r : co_await weft::fork_join(std::move(children)))
    sum += r;
  co_return sum;
}

weft::task<int> value_after(std::chrono::milliseconds delay, int v) {
  co_await weft::sleep(delay);
  co_return v;
}

weft::task<> nothing() { co_return; }

weft::task<int> fail_after(std::chrono::milliseconds delay) {
  co_await weft::sleep(delay);
  throw std::runtime_error("child failed");
  co_return 0;
}

// Sleeps for an hour unless cancelled; records how it ended.
weft::task<int> sleeper(std::atomic<int>& cancelled) {
  try {
    co_await weft::sleep(3600s);
  } catch (const weft::cancelled_error&) {
    cancelled.fetch_add(1);
    throw;
  }
  co_return 1;
}

}  // namespace

TEST_CASE("fork_join: the tuple form returns each child's result in argument order") {
  weft_test::watchdog dog(10s);
  auto body = []() -> weft::task<bool> {
    auto [a, b, c] = co_await weft::fork_join(value_after(5ms, 1), value_after(0ms, 2), nothing());
    static_assert(std::is_same_v<decltype(c), std::monostate>);
    co_return a == 1 && b == 2;
  };
  CHECK(weft::run(body(), {.worker_threads = 2}));
}

TEST_CASE("fork_join: the vector form returns results in order and an empty vector at once") {
  weft_test::watchdog dog(10s);
  auto body = []() -> weft::task<bool> {
    std::vector<weft::task<int>> tasks;
    for (int i = 0; i < 50; ++i)
      tasks.push_back(value_after(std::chrono::milliseconds(i % 3), i));
    const std::vector<int> results = co_await weft::fork_join(std::move(tasks));
    bool ordered = results.size() == 50;
    for (int i = 0; ordered && i < 50; ++i)
      ordered = results[static_cast<std::size_t>(i)] == i;
    const auto none = co_await weft::fork_join(std::vector<weft::task<int>>{});
    co_return ordered&& none.empty();
  };
  CHECK(weft::run(body(), {.worker_threads = 2}));
}

TEST_CASE("fork_join: the array form returns an array of results in order") {
  weft_test::watchdog dog(10s);
  auto body = []() -> weft::task<bool> {
    std::array<weft::task<int>, 4> four{value_after(3ms, 0), value_after(0ms, 1),
                                        value_after(1ms, 2), value_after(0ms, 3)};
    const std::array<int, 4> results = co_await weft::fork_join(std::move(four));
    co_return results == std::array<int, 4>{0, 1, 2, 3};
  };
  CHECK(weft::run(body(), {.worker_threads = 2}));
}

TEST_CASE("fork_join: recursive fib on four workers computes the right value") {
  weft_test::watchdog dog(60s);
  const int n = weft_test::sanitized() ? 18 : 25;
  CHECK(weft::run(fib(n), {.worker_threads = 4}) == fib_reference(n));
}

TEST_CASE("fork_join: a fan-out tree on one worker computes the right sum") {
  weft_test::watchdog dog(60s);
  CHECK(weft::run(tree_sum(0, 10000), {.worker_threads = 1}) == 10000ULL * 9999 / 2);
}

TEST_CASE(
    "fork_join: the first failure is rethrown after every child finished and cancels the others") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  auto body = [&]() -> weft::task<std::string> {
    std::string what;
    try {
      (void)co_await weft::fork_join(sleeper(cancelled), fail_after(2ms), sleeper(cancelled));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    co_return what;
  };
  CHECK(weft::run(body(), {.worker_threads = 2}) == "child failed");
  CHECK(cancelled.load() == 2);
}

TEST_CASE(
    "fork_join: cancelling the awaiting task cancels every child and throws cancelled_error") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  auto joiner = [&]() -> weft::task<int> {
    auto [a, b] = co_await weft::fork_join(sleeper(cancelled), sleeper(cancelled));
    co_return a + b;
  };
  auto body = [&]() -> weft::task<bool> {
    auto handle = weft::spawn(joiner());
    co_await weft::sleep(5ms);
    handle.cancel();
    bool threw = false;
    try {
      (void)co_await handle;
    } catch (const weft::cancelled_error&) {
      threw = true;
    }
    co_return threw;
  };
  CHECK(weft::run(body(), {.worker_threads = 2}));
  CHECK(cancelled.load() == 2);
}

TEST_CASE("fork_join: a caller cancelled before it forks starts its children cancelled") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  auto joiner = [&]() -> weft::task<int> {
    // Spins until the cancellation is requested, without reaching a cancellation point.
    weft::task_ref self = co_await weft::current_task();
    while (self.cancelling() == 0)
      std::this_thread::yield();
    auto [a, b] = co_await weft::fork_join(sleeper(cancelled), sleeper(cancelled));
    co_return a + b;
  };
  auto body = [&]() -> weft::task<bool> {
    auto handle = weft::spawn(joiner());
    handle.cancel();
    try {
      (void)co_await handle;
    } catch (const weft::cancelled_error&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(weft::run(body(), {.worker_threads = 2}));
  CHECK(cancelled.load() == 2);
}

TEST_CASE("fork_join: shutdown with children suspended destroys them through the caller") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  {
    weft::runtime rt({.worker_threads = 2});
    auto joiner = [&]() -> weft::task<int> {
      auto [a, b] = co_await weft::fork_join(sleeper(cancelled), sleeper(cancelled));
      co_return a + b;
    };
    auto handle = rt.spawn(joiner());
    std::this_thread::sleep_for(20ms);
    rt.shutdown(5s);
  }
  CHECK(cancelled.load() == 2);
}

TEST_CASE("fork_join: awaiting outside a runtime worker is refused") {
  // The check fork_join's await_ready makes, on this thread, which is no worker.
  CHECK_THROWS_AS(weft::detail::fork_join_core::require_worker_thread(), std::logic_error);
}

TEST_CASE("fork_join: empty tasks are refused") {
  weft::task<int> empty;
  CHECK_THROWS_AS((void)weft::fork_join(value_after(0ms, 1), std::move(empty)),
                  std::invalid_argument);
}

TEST_SUITE("stress") {
  TEST_CASE("fork_join: repeated trees on four workers stay exact while thieves meet light mode") {
    // Each worker's deque enters light mode after 1,024 fork pops in a row (deque.hpp), where
    // every steal from it pays a heavy fence and the owner's pops none: many steals from busy
    // deques, every result checked.
    const std::size_t rounds = weft_test::stress_count(weft_test::sanitized() ? 10 : 200, 2000);
    const int n = weft_test::sanitized() ? 16 : 21;
    weft_test::watchdog dog(240s);
    auto body = [&]() -> weft::task<bool> {
      for (std::size_t r = 0; r < rounds; ++r) {
        if (co_await fib(n) != fib_reference(n)) co_return false;
        if (co_await tree_sum(0, 10000) != 10000ULL * 9999 / 2) co_return false;
      }
      co_return true;
    };
    CHECK(weft::run(body(), {.worker_threads = 4}));
  }

  TEST_CASE("fork_join: many small trees on four workers with suspending leaves all join") {
    const std::size_t rounds = weft_test::stress_count(20, 500);
    weft_test::watchdog dog(120s);
    auto leaf = [](int i) -> weft::task<std::uint64_t> {
      if (i % 7 == 0) co_await weft::yield_now();
      co_return static_cast<std::uint64_t>(i);
    };
    auto body = [&]() -> weft::task<bool> {
      for (std::size_t r = 0; r < rounds; ++r) {
        std::vector<weft::task<std::uint64_t>> level;
        for (int i = 0; i < 64; ++i)
          level.push_back(leaf(i));
        std::uint64_t sum = 0;
        for (auto v : co_await weft::fork_join(std::move(level)))
          sum += v;
        if (sum != 63 * 64 / 2) co_return false;
        if (co_await fib(12) != 144) co_return false;
      }
      co_return true;
    };
    CHECK(weft::run(body(), {.worker_threads = 4}));
  }
}
