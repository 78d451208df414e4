// tests/test_wait.cpp: weft::wait (patterns.md row 5, asyncio.wait): first_completed,
// first_exception and all_completed split the handles into done and pending in input order; a
// timeout returns what is done so far; wait never cancels the tasks, not even when wait itself
// is cancelled; no timer is left behind; the timeout's extremes saturate (max() never expires,
// min(), zero and minus one return at once with what is done).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/durations.hpp"
#include "support/outcomes.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using weft_test::sleep_then;

weft::task<int> fail_after(std::chrono::milliseconds d) {
  co_await weft::sleep(d);
  throw std::runtime_error("failed");
}

// Sleeps `d`, then marks `finished`; a cancellation would skip the mark.
weft::task<int> finish_after(std::chrono::milliseconds d, std::atomic<int>& finished, int v) {
  co_await weft::sleep(d);
  ++finished;
  co_return v;
}

using counts = std::pair<std::size_t, std::size_t>;
counts done_pending(std::size_t done, std::size_t pending) { return {done, pending}; }

// How many handles are done and pending after a wait with timeout `d` on one task that sleeps
// `work`. The cases that expect the wait to return at once give the task an hour: with 20 ms, a
// loaded machine (TSan, load 20) once descheduled the waiter long enough for the task to finish
// first, and the wait then rightly reported it done.
template <class D>
weft::task<std::pair<std::size_t, std::size_t>> wait_on(D d, std::chrono::milliseconds work) {
  std::vector<weft::join_handle<int>> hs;
  hs.push_back(weft::spawn(sleep_then(work, 1)));
  auto [done, pending] = co_await weft::wait(std::move(hs), weft::all_completed, d);
  for (auto& h : pending)
    h.cancel();
  co_return std::pair{done.size(), pending.size()};
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE(
    "wait: the extremes of every duration type saturate instead of overflowing", D, wait_extremes) {
  // Before saturation, a timeout of nanoseconds::max() overflowed now() + timeout (signed
  // overflow; wrapped into the past, so wait returned at once), and hours::max() overflowed in the
  // conversion to clock::duration.
  weft_test::watchdog dog(20s, "waiting with an extreme timeout");
  auto main_task = []() -> weft::task<> {
    const auto forever = co_await wait_on(D::max(), 20ms);
    CHECK(forever == done_pending(1, 0));
    for (D d : weft_test::expired_extremes<D>()) {
      const auto start = steady::now();
      const auto at_once = co_await wait_on(d, 1h);
      CHECK_MESSAGE(at_once == done_pending(0, 1), ("timeout " + weft_test::describe(d)));
      CHECK(steady::now() - start < 5s);
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}
TEST_CASE_TEMPLATE_APPLY(wait_extremes, weft_test::every_integral_duration);

TEST_CASE(
    "wait: a floating-point timeout never expires when huge or infinite and at once when NaN") {
  weft_test::watchdog dog(20s, "waiting with an extreme floating-point timeout");
  auto main_task = []() -> weft::task<> {
    for (auto d : weft_test::forever_doubles()) {
      const auto forever = co_await wait_on(d, 20ms);
      CHECK_MESSAGE(forever == done_pending(1, 0), ("timeout " + weft_test::describe(d)));
    }
    for (auto d : weft_test::expired_doubles()) {
      const auto at_once = co_await wait_on(d, 1h);
      CHECK_MESSAGE(at_once == done_pending(0, 1), ("timeout " + weft_test::describe(d)));
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("wait: first_completed returns as soon as one task finished and cancels none") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::vector<weft::join_handle<int>> hs;
    hs.push_back(weft::spawn(sleep_then(300ms, 0)));
    hs.push_back(weft::spawn(sleep_then(2ms, 1)));
    hs.push_back(weft::spawn(sleep_then(300ms, 2)));
    const auto start = steady::now();
    auto [done, pending] = co_await weft::wait(std::move(hs), weft::first_completed);
    CHECK(steady::now() - start < 250ms);
    REQUIRE(done.size() == 1);
    REQUIRE(pending.size() == 2);
    CHECK(co_await done[0] == 1);
    // Pending, in input order, and still running to their normal end.
    CHECK_FALSE(pending[0].done());
    CHECK(co_await pending[0] == 0);
    CHECK(co_await pending[1] == 2);
    CHECK_FALSE(pending[1].cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("wait: first_exception returns at the first failure and otherwise waits for all") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    {
      std::vector<weft::join_handle<int>> hs;
      hs.push_back(weft::spawn(sleep_then(1ms, 0)));
      hs.push_back(weft::spawn(sleep_then(300ms, 1)));
      hs.push_back(weft::spawn(fail_after(10ms)));
      const auto start = steady::now();
      auto [done, pending] = co_await weft::wait(std::move(hs), weft::first_exception);
      CHECK(steady::now() - start < 250ms);
      REQUIRE(done.size() == 2);
      REQUIRE(pending.size() == 1);
      CHECK(co_await done[0] == 0);  // input order
      CHECK_THROWS_AS(done[1].take_result(), std::runtime_error);
      CHECK(co_await pending[0] == 1);
    }
    {
      std::vector<weft::join_handle<int>> hs;
      hs.push_back(weft::spawn(sleep_then(20ms, 0)));
      hs.push_back(weft::spawn(sleep_then(1ms, 1)));
      auto [done, pending] = co_await weft::wait(std::move(hs), weft::first_exception);
      CHECK(done.size() == 2);
      CHECK(pending.empty());
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("wait: all_completed is the default and keeps the input order") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::vector<weft::join_handle<int>> hs;
    for (int i = 0; i < 10; ++i) {
      hs.push_back(i == 4 ? weft::spawn(fail_after(3ms))
                          : weft::spawn(sleep_then(std::chrono::milliseconds(10 - i), i)));
    }
    auto [done, pending] = co_await weft::wait(std::move(hs));
    CHECK(pending.empty());
    REQUIRE(done.size() == 10);
    for (int i = 0; i < 10; ++i) {
      auto& h = done[static_cast<std::size_t>(i)];
      CHECK(h.done());
      if (i == 4) {
        CHECK_THROWS_AS(h.take_result(), std::runtime_error);
      } else {
        CHECK(h.take_result() == i);
      }
    }
    // asyncio.wait(set()) raises ValueError (test_tasks: wait on an empty set).
    CHECK_THROWS_AS(co_await weft::wait(std::vector<weft::join_handle<int>>{}),
                    std::invalid_argument);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("wait: a timeout returns what is done and leaves the rest running") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    std::vector<weft::join_handle<int>> hs;
    hs.push_back(weft::spawn(finish_after(1ms, finished, 0)));
    hs.push_back(weft::spawn(finish_after(300ms, finished, 1)));
    const auto start = steady::now();
    auto [done, pending] = co_await weft::wait(std::move(hs), weft::all_completed, 30ms);
    const auto took = steady::now() - start;
    CHECK(took >= 30ms);
    CHECK(took < 250ms);
    REQUIRE(done.size() == 1);
    REQUIRE(pending.size() == 1);
    CHECK(co_await done[0] == 0);
    CHECK(co_await pending[0] == 1);  // not cancelled by the timeout
    CHECK(finished.load() == 2);
    // A timeout that did not expire is disarmed when wait returns.
    std::vector<weft::join_handle<int>> more;
    more.push_back(weft::spawn(sleep_then(1ms, 2)));
    auto result = co_await weft::wait(std::move(more), weft::first_completed, 60s);
    CHECK(result.done.size() == 1);
  };
  rt.block_on(main_task());
  std::uint64_t timers = rt.stats().timers;
  for (int i = 0; i < 1000 && timers != 0; ++i) {
    std::this_thread::sleep_for(1ms);
    timers = rt.stats().timers;
  }
  CHECK(timers == 0);  // a 60 s timer left armed would still be counted
}

TEST_CASE(
    "wait: cancelling the waiting task throws cancelled_error and cancels none of the tasks") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    auto waiter = weft::spawn(
        [](std::atomic<int>& f) -> weft::task<bool> {
          std::vector<weft::join_handle<int>> hs;
          hs.push_back(weft::spawn(finish_after(300ms, f, 0)));
          hs.push_back(weft::spawn(finish_after(300ms, f, 1)));
          try {
            (void)co_await weft::wait(std::move(hs));
          } catch (const weft::cancelled_error&) {
            co_return true;
          }
          co_return false;
        },
        std::ref(finished));
    co_await weft::sleep(5ms);
    waiter.cancel();
    CHECK(co_await waiter);       // the wait threw cancelled_error
    CHECK(finished.load() == 0);  // at once, without waiting for the tasks
    // The tasks were detached, not cancelled: they still finish normally.
    const auto end = steady::now() + 5s;
    while (finished.load() < 2 && steady::now() < end)
      co_await weft::sleep(1ms);
    CHECK(finished.load() == 2);
  };
  weft::run(main_task(), {.worker_threads = 2});
}
