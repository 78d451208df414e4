// tests/test_event.cpp: weft::event (asyncio.Event): wait on a set event returns at once, set()
// wakes every waiter (also from a foreign thread), clear(), and cancellation before queueing,
// while queued and after being woken. Stress S4 (event part): sets from foreign threads and
// cancellations leave no waiter stranded.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <random>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<> wait_and_count(weft::event& e, std::atomic<int>& entered, std::atomic<int>& woken) {
  ++entered;
  co_await e.wait();
  ++woken;
}

weft::task<> until(std::atomic<int>& counter, int k) {
  while (counter.load() < k)
    co_await weft::yield_now();
}

}  // namespace

TEST_CASE("event: wait returns at once when the event is set and clear lowers it") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::event e;
    CHECK_FALSE(e.is_set());
    e.set();
    CHECK(e.is_set());
    co_await e.wait();
    e.clear();
    CHECK_FALSE(e.is_set());
    weft::event initially(true);
    co_await initially.wait();
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("event: set wakes every waiter even if clear follows at once") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::event e;
    std::atomic<int> entered{0};
    std::atomic<int> woken{0};
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 5; ++i)
      hs.push_back(weft::spawn(wait_and_count(e, entered, woken)));
    co_await until(entered, 5);
    CHECK(woken.load() == 0);
    e.set();
    e.clear();
    for (auto& h : hs)
      co_await h;
    CHECK(woken.load() == 5);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("event: a foreign thread can set the event") {
  weft_test::watchdog dog(10s);
  weft::event e;
  weft::runtime rt({.worker_threads = 2});
  std::atomic<int> entered{0};
  std::atomic<int> woken{0};
  auto h = rt.spawn(wait_and_count(e, entered, woken));
  std::thread([&] {
    std::this_thread::sleep_for(20ms);
    e.set();
  }).join();
  rt.block_on([&]() -> weft::task<> { co_await h; }());
  CHECK(woken.load() == 1);
}

TEST_CASE("event: cancelled waiters throw in every state and the others are still woken") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::event e;
    std::atomic<int> entered{0};
    std::atomic<int> woken{0};
    auto before = weft::spawn(wait_and_count(e, entered, woken));
    before.cancel();  // before it queues
    CHECK_THROWS_AS(co_await before, weft::cancelled_error);
    auto queued = weft::spawn(wait_and_count(e, entered, woken));
    auto woken_then_cancelled = weft::spawn(wait_and_count(e, entered, woken));
    auto other = weft::spawn(wait_and_count(e, entered, woken));
    co_await until(entered, 4);
    queued.cancel();  // while queued
    CHECK_THROWS_AS(co_await queued, weft::cancelled_error);
    e.set();
    woken_then_cancelled.cancel();  // woken by set, not yet resumed (one worker)
    CHECK_THROWS_AS(co_await woken_then_cancelled, weft::cancelled_error);
    co_await other;
    CHECK(woken.load() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_SUITE("stress") {
TEST_CASE("event: stress with waits cancels and sets from foreign threads strands no waiter") {
  const std::size_t rounds = weft_test::stress_count(200, 20000);
  constexpr int waiters = 16;
  weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
  weft::runtime rt({.worker_threads = 2});
  std::mt19937 rng(3);
  for (std::size_t r = 0; r < rounds; ++r) {
    weft::event e;
    std::atomic<int> entered{0};
    std::atomic<int> woken{0};
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < waiters; ++i)
      hs.push_back(rt.spawn(wait_and_count(e, entered, woken)));
    for (int i = 0; i < waiters; ++i)
      if (rng() % 3 == 0) hs[static_cast<std::size_t>(i)].cancel();
    std::thread setter([&e] { e.set(); });
    int cancelled = 0;
    for (auto& h : hs) {
      try {
        rt.block_on([&]() -> weft::task<> { co_await h; }());
      } catch (const weft::cancelled_error&) {
        ++cancelled;
      }
    }
    setter.join();
    REQUIRE(woken.load() + cancelled == waiters);
  }
}
}  // TEST_SUITE("stress")
