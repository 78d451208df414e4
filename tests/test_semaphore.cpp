// tests/test_semaphore.cpp: weft::semaphore and weft::bounded_semaphore (patterns.md row 9,
// asyncio.Semaphore and BoundedSemaphore): permits, try_acquire, release(n), FIFO without
// overtaking, the bound, releases from foreign threads, and cancellation in every waiter state
// (reliability rule 3). Stress S4 (semaphore part): permits conserved, never more than N holders.
//
// Deterministic tests use one worker: "entered == k" after a yield means the k-th waiter queued.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

struct log_state {
  std::atomic<int> entered{0};
  std::vector<int> order;  // only touched on the single worker
};

weft::task<> take_and_log(weft::semaphore& sem, log_state& s, int id) {
  ++s.entered;
  auto permit = co_await sem.acquire();
  s.order.push_back(id);
}

weft::task<> until_entered(log_state& s, int k) {
  while (s.entered.load() < k)
    co_await weft::yield_now();
}

// The entries order[at], order[at + 1], sorted: two waiters granted by one release run in the
// scheduler's order, not necessarily in their grant order.
std::vector<int> sorted_pair(const std::vector<int>& order, std::size_t at) {
  std::vector<int> pair(order.begin() + static_cast<std::ptrdiff_t>(at),
                        order.begin() + static_cast<std::ptrdiff_t>(at + 2));
  std::sort(pair.begin(), pair.end());
  return pair;
}

}  // namespace

TEST_CASE("semaphore: permits are taken and given back by their destructor") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(2);
    auto a = co_await sem.acquire();
    CHECK(sem.available() == 1);
    {
      auto b = co_await sem.acquire();
      CHECK(sem.available() == 0);
      CHECK_FALSE(sem.try_acquire().has_value());
    }
    CHECK(sem.available() == 1);
    a.release();
    CHECK_FALSE(a.owns_permit());
    CHECK(sem.available() == 2);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: try_acquire and release work without a runtime") {
  weft::semaphore sem(1);
  auto p = sem.try_acquire();
  REQUIRE(p.has_value());
  CHECK_FALSE(sem.try_acquire().has_value());
  sem.release(3);  // a plain semaphore may grow
  CHECK(sem.available() == 3);
  p.reset();
  CHECK(sem.available() == 4);
}

TEST_CASE("semaphore: waiters are served in FIFO order and no later acquire overtakes them") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    // Waiters that keep their permit (detach), so each release decides exactly who runs.
    auto keep = [&](int id) -> weft::task<> {
      ++s.entered;
      auto permit = co_await sem.acquire();
      s.order.push_back(id);
      (void)permit.detach();
    };
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 6; ++i) {
      hs.push_back(weft::spawn(keep(i)));
      co_await until_entered(s, i + 1);
    }
    sem.release(2);  // straight to waiters 0 and 1
    CHECK(sem.available() == 0);
    CHECK_FALSE(sem.try_acquire().has_value());  // no overtaking the queue
    co_await hs[0];
    co_await hs[1];
    REQUIRE(s.order.size() == 2);
    CHECK(sorted_pair(s.order, 0) == std::vector<int>{0, 1});
    sem.release();
    co_await hs[2];
    CHECK(s.order.size() == 3);
    CHECK(s.order.back() == 2);
    sem.release(4);  // 3, 4, 5 and one left over
    for (std::size_t i = 3; i < hs.size(); ++i)
      co_await hs[i];
    CHECK(s.order.size() == 6);
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: release from a foreign thread wakes the waiters") {
  weft_test::watchdog dog(10s);
  weft::semaphore sem(0);
  weft::runtime rt({.worker_threads = 2});
  auto h = rt.spawn([&sem]() -> weft::task<int> {
    auto p = co_await sem.acquire();
    co_return 7;
  });
  std::thread([&sem] {
    std::this_thread::sleep_for(20ms);
    sem.release();
  }).join();
  CHECK(rt.block_on([&]() -> weft::task<int> { co_return co_await h; }()) == 7);
  CHECK(sem.available() == 1);
}

TEST_CASE("semaphore: a waiter cancelled before it queues throws holding no permit") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    auto h = weft::spawn(take_and_log(sem, s, 0));
    h.cancel();
    CHECK_THROWS_AS(co_await h, weft::cancelled_error);
    sem.release();
    CHECK(sem.available() == 1);  // nobody queued to take it
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: a queued waiter that is cancelled leaves and the permit goes to the next") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    auto a = weft::spawn(take_and_log(sem, s, 0));
    co_await until_entered(s, 1);
    auto b = weft::spawn(take_and_log(sem, s, 1));
    co_await until_entered(s, 2);
    a.cancel();
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    sem.release();
    co_await b;
    CHECK(s.order == std::vector<int>{1});
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: a waiter cancelled after being woken passes the permit on") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    auto a = weft::spawn(take_and_log(sem, s, 0));
    co_await until_entered(s, 1);
    auto b = weft::spawn(take_and_log(sem, s, 1));
    co_await until_entered(s, 2);
    sem.release();  // granted to `a`, which cannot run before this task suspends
    a.cancel();
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    co_await b;
    CHECK(s.order == std::vector<int>{1});
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: a woken waiter cancelled with nobody behind gives the permit back") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    auto a = weft::spawn(take_and_log(sem, s, 0));
    co_await until_entered(s, 1);
    sem.release();
    a.cancel();
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    CHECK(s.order.empty());
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("bounded_semaphore: releasing beyond the initial count throws and names the limit") {
  weft::bounded_semaphore sem(2);
  CHECK(sem.limit() == 2);
  CHECK_THROWS_AS(sem.release(), std::logic_error);
  try {
    sem.release();
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("limit of 2") != std::string::npos);
  }
  CHECK(sem.available() == 2);  // the throwing release changed nothing
  {
    auto p = sem.try_acquire();
    REQUIRE(p.has_value());
    CHECK(sem.available() == 1);
    CHECK_THROWS_AS(sem.release(2), std::logic_error);
  }
  CHECK(sem.available() == 2);
}

TEST_CASE("bounded_semaphore: waiters and cancellations keep the count within the bound") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::bounded_semaphore sem(1);
    auto p = co_await sem.acquire();
    std::atomic<int> entered{0};
    auto waiter = [&]() -> weft::task<> {
      ++entered;
      auto q = co_await sem.acquire();
    };
    auto a = weft::spawn(waiter());
    while (entered.load() < 1)
      co_await weft::yield_now();
    auto b = weft::spawn(waiter());
    while (entered.load() < 2)
      co_await weft::yield_now();
    p.release();  // granted to a
    a.cancel();   // a passes it on to b
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    co_await b;
    CHECK(sem.available() == 1);
    CHECK_THROWS_AS(sem.release(), std::logic_error);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_SUITE("stress") {
TEST_CASE("semaphore: stress with random acquire release and cancel from workers and threads") {
  const std::size_t tasks = weft_test::stress_count(64, 1000);
  const std::size_t rounds = weft_test::stress_count(200, 1000);
  constexpr int limit = 3;
  weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
  weft::bounded_semaphore sem(limit);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> acquired{0};
  auto hold = [&]() {
    const int now = holders.fetch_add(1) + 1;
    int seen = max_holders.load();
    while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
    }
  };
  weft::runtime rt({.worker_threads = 2});
  // Foreign threads cannot co_await; they take permits with try_acquire and release them.
  std::vector<std::thread> foreign;
  for (int t = 0; t < 2; ++t) {
    foreign.emplace_back([&] {
      while (!stop.load()) {
        if (auto p = sem.try_acquire()) {
          hold();
          holders.fetch_sub(1);
        }
        std::this_thread::yield();
      }
    });
  }
  auto worker = [&](std::size_t id) -> weft::task<> {
    std::mt19937 rng(static_cast<unsigned>(id));
    for (std::size_t r = 0; r < rounds; ++r) {
      try {
        auto permit = co_await sem.acquire();
        hold();
        ++acquired;
        if (rng() % 4 == 0) {
          try {
            co_await weft::yield_now();
          } catch (...) {
            holders.fetch_sub(1);
            throw;
          }
        }
        holders.fetch_sub(1);
      } catch (const weft::cancelled_error&) {
      }
    }
  };
  auto main_task = [&]() -> weft::task<> {
    std::vector<weft::join_handle<void>> hs;
    for (std::size_t i = 0; i < tasks; ++i)
      hs.push_back(weft::spawn(worker(i)));
    std::mt19937 rng(7);
    std::size_t finished = 0;
    while (finished < hs.size()) {
      hs[rng() % hs.size()].cancel();
      co_await weft::yield_now();
      finished = 0;
      for (auto& h : hs)
        finished += h.done() ? 1 : 0;
    }
    for (auto& h : hs)
      co_await h;
  };
  rt.block_on(main_task());
  stop = true;
  for (auto& t : foreign)
    t.join();
  CHECK(max_holders.load() <= limit);
  CHECK(holders.load() == 0);
  CHECK(sem.available() == static_cast<std::size_t>(limit));  // every permit came back
  MESSAGE("acquired ", acquired.load(), ", max holders ", max_holders.load());
}
}  // TEST_SUITE("stress")
