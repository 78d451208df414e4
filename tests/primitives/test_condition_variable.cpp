// tests/test_condition_variable.cpp: weft::condition_variable with weft::mutex (asyncio.Condition):
// wait unlocks and relocks, wait with a predicate, notify_one in FIFO order, notify_all, and
// cancellation: the guard holds the lock again afterwards, and a waiter cancelled after notify_one
// chose it passes the notification on.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

struct shared {
  weft::mutex m;
  weft::condition_variable cv;
  std::atomic<int> entered{0};
  std::vector<int> order;  // guarded by m
  bool ready = false;      // guarded by m
};

weft::task<> wait_once(shared& s, int id) {
  auto guard = co_await s.m.lock();
  ++s.entered;
  try {
    co_await s.cv.wait(guard);
  } catch (const weft::cancelled_error&) {
    CHECK(guard.owns_lock());  // relocked before the cancellation came out
    throw;
  }
  CHECK(guard.owns_lock());
  s.order.push_back(id);
}

weft::task<> until_entered(shared& s, int k) {
  while (s.entered.load() < k)
    co_await weft::yield_now();
}

}  // namespace

TEST_CASE("condition_variable: notify_one wakes waiters in FIFO order and notify_all wakes all") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 4; ++i) {
      hs.push_back(weft::spawn(wait_once(s, i)));
      co_await until_entered(s, i + 1);
    }
    CHECK_FALSE(s.m.locked());  // every waiter unlocked while waiting
    s.cv.notify_one();
    co_await hs[0];
    CHECK(s.order == std::vector<int>{0});
    s.cv.notify_all();
    for (std::size_t i = 1; i < hs.size(); ++i)
      co_await hs[i];
    // Woken together, they relock in the order the scheduler runs them.
    std::sort(s.order.begin(), s.order.end());
    CHECK(s.order == std::vector<int>{0, 1, 2, 3});
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("condition_variable: wait with a predicate returns once it holds") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    std::deque<int> items;
    auto consumer = weft::spawn([&]() -> weft::task<int> {
      auto guard = co_await s.m.lock();
      co_await s.cv.wait(guard, [&] { return !items.empty(); });
      co_return items.front();
    });
    for (int i = 0; i < 3; ++i) {
      co_await weft::sleep(1ms);
      s.cv.notify_all();  // spurious: nothing there yet
    }
    {
      auto guard = co_await s.m.lock();
      items.push_back(42);
    }
    s.cv.notify_one();
    CHECK(co_await consumer == 42);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("condition_variable: a cancelled waiter comes back holding the lock") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    auto h = weft::spawn(wait_once(s, 0));
    co_await until_entered(s, 1);
    auto guard = co_await s.m.lock();  // the waiter must relock behind this holder
    h.cancel();
    co_await weft::yield_now();
    CHECK_FALSE(h.done());
    guard.unlock();
    CHECK_THROWS_AS(co_await h, weft::cancelled_error);
    CHECK_FALSE(s.m.locked());
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("condition_variable: a waiter cancelled after notify_one chose it passes it on") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    auto a = weft::spawn(wait_once(s, 0));
    co_await until_entered(s, 1);
    auto b = weft::spawn(wait_once(s, 1));
    co_await until_entered(s, 2);
    s.cv.notify_one();  // chooses a, which cannot run yet (one worker)
    a.cancel();
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    co_await b;  // woken by the notification a passed on
    CHECK(s.order == std::vector<int>{1});
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE(
    "condition_variable: a waiter cancelled while relocking after notify relocks then throws") {
  // test_locks (Condition.wait cancelled after notify while it re-acquires the lock): the waiter
  // comes back holding the lock and raises CancelledError; the notification it used goes on to
  // the next waiter.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    auto a = weft::spawn(wait_once(s, 0));
    co_await until_entered(s, 1);
    auto b = weft::spawn(wait_once(s, 1));
    co_await until_entered(s, 2);
    auto guard = co_await s.m.lock();
    s.cv.notify_one();          // chooses a
    co_await weft::sleep(5ms);  // a resumes and waits to relock behind this holder
    CHECK_FALSE(a.done());
    a.cancel();  // relocking cannot be interrupted: the request stays pending
    co_await weft::sleep(5ms);
    CHECK_FALSE(a.done());
    guard.unlock();
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);  // wait_once checked the lock was held
    co_await b;                                          // woken by the notification a passed on
    CHECK(s.order == std::vector<int>{1});
    CHECK_FALSE(s.m.locked());
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("condition_variable: notify with a count wakes that many waiters in FIFO order") {
  // test_locks (Condition.notify(n)): notify(2) wakes the first two waiters, notify(n) beyond the
  // number waiting wakes them all.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    shared s;
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 4; ++i) {
      hs.push_back(weft::spawn(wait_once(s, i)));
      co_await until_entered(s, i + 1);
    }
    s.cv.notify(2);
    co_await weft::sleep(5ms);
    {
      auto guard = co_await s.m.lock();
      CHECK(s.order == std::vector<int>{0, 1});
    }
    s.cv.notify(10);
    for (auto& h : hs)
      co_await h;
    CHECK(s.order == std::vector<int>{0, 1, 2, 3});
  };
  weft::run(main_task(), {.worker_threads = 1});
}
