// tests/test_timeout.cpp: weft::timeout, timeout_at and wait_for (patterns.md row 4): expiry
// cancels the inner work, waits for its cleanup, then throws timeout_error; success leaves no timer
// and no stale cancellation behind; a cancellation from outside stays cancelled_error; nested
// timeouts report at the one that expired; a timeout over a join_handle cancels that task.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "support/outcomes.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::sleep_then;

// Sleeps for a long time; on cancellation, cleans up with a co_await, marks `cleaned`, rethrows.
weft::task<int> slow_with_cleanup(std::atomic<bool>& cleaned) {
  std::exception_ptr cancelled;
  try {
    co_await weft::sleep(10s);
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  if (cancelled) {
    co_await weft::sleep(5ms);
    cleaned = true;
    std::rethrow_exception(cancelled);
  }
  co_return 1;
}

// Waits until the runtime has no timers left (the stats are exact once idle), up to `limit`.
std::uint64_t timers_once_idle(weft::runtime& rt, std::chrono::milliseconds limit = 1s) {
  const auto end = steady::now() + limit;
  std::uint64_t timers = rt.stats().timers;
  while (timers != 0 && steady::now() < end) {
    std::this_thread::sleep_for(1ms);
    timers = rt.stats().timers;
  }
  return timers;
}

}  // namespace

TEST_CASE("timeout: expiry throws timeout_error after the inner cleanup ran") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> cleaned{false};
    const auto start = steady::now();
    bool timed_out = false;
    try {
      (void)co_await weft::timeout(10ms, slow_with_cleanup(cleaned));
    } catch (const weft::timeout_error&) {
      timed_out = true;
      CHECK(cleaned.load());  // the cleanup finished before the timeout reported
    }
    CHECK(timed_out);
    const auto took = steady::now() - start;
    CHECK(took >= 15ms);  // 10 ms, then the 5 ms cleanup
    CHECK(took < 5s);
    // The cancellation was consumed by the timeout: this task goes on normally.
    co_await weft::sleep(2ms);
    co_await weft::yield_now();
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: success returns the value and leaves no timer once idle") {
  weft_test::watchdog dog(20s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = []() -> weft::task<int> {
    int sum = 0;
    for (int i = 0; i < 50; ++i)
      sum += co_await weft::timeout(60s, sleep_then(0ms, 1));
    co_await weft::timeout(60s, []() -> weft::task<> { co_await weft::sleep(1ms); }());  // void
    sum += co_await weft::wait_for(weft::spawn(sleep_then(1ms, 10)), 60s);
    co_return sum;
  };
  CHECK(rt.block_on(main_task()) == 60);
  // A 60 s timer left armed would still be counted here.
  CHECK(timers_once_idle(rt) == 0);
}

TEST_CASE(
    "timeout: an expiry that the work never noticed returns the value and leaves no cancellation") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    // The work runs past the deadline without reaching a cancellation point.
    auto busy = []() -> weft::task<int> {
      const auto end = steady::now() + 30ms;
      while (steady::now() < end)
        std::this_thread::yield();
      co_return 5;
    };
    CHECK(co_await how_it_ends(weft::timeout(1ms, busy())) == ended::value);
    // The timeout's request was taken back: later waits of this task are not cancelled.
    CHECK(co_await how_it_ends(weft::sleep(2ms)) == ended::value);
    CHECK(co_await how_it_ends(weft::yield_now()) == ended::value);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: a cancellation from outside stays cancelled_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> cleaned{false};
    auto h = weft::spawn(
        [](std::atomic<bool>& c) -> weft::task<int> {
          co_return co_await weft::timeout(10s, slow_with_cleanup(c));
        },
        std::ref(cleaned));
    co_await weft::sleep(5ms);
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(h.cancelled());
    CHECK(cleaned.load());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "timeout: an outside cancel during the cleanup of an expired timeout stays cancelled_error") {
  // Both the timeout and an outside cancel stand: asyncio reports CancelledError then.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> in_cleanup{false};
    std::atomic<bool> outside_cancelled{false};
    auto h = weft::spawn(
        [](std::atomic<bool>& in, std::atomic<bool>& out) -> weft::task<int> {
          auto inner = [](std::atomic<bool>& in2, std::atomic<bool>& out2) -> weft::task<int> {
            try {
              co_await weft::sleep(10s);
            } catch (const weft::cancelled_error&) {
              // Cleanup without a cancellation point, until the outside cancel came.
              in2 = true;
              const auto end = steady::now() + 5s;
              while (!out2.load() && steady::now() < end)
                std::this_thread::yield();
              throw;
            }
            co_return 1;
          };
          co_return co_await weft::timeout(5ms, inner(in, out));
        },
        std::ref(in_cleanup), std::ref(outside_cancelled));
    while (!in_cleanup.load())
      co_await weft::sleep(1ms);
    h.cancel();
    outside_cancelled = true;
    CHECK(co_await how_it_ends(h) == ended::cancelled);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: a nested inner expiry is reported by the inner timeout") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto body = []() -> weft::task<std::string> {
      try {
        (void)co_await weft::timeout(5ms, sleep_then(10s, 1));
      } catch (const weft::timeout_error&) {
        co_return "inner";
      }
      co_return "none";
    };
    CHECK(co_await weft::timeout(10s, body()) == "inner");
    CHECK(co_await how_it_ends(weft::sleep(1ms)) == ended::value);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: a nested outer expiry is reported by the outer timeout only") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> inner_saw{-1};
    auto body = [](std::atomic<int>& saw) -> weft::task<int> {
      try {
        co_return co_await weft::timeout(10s, sleep_then(10s, 1));
      } catch (const weft::timeout_error&) {
        saw = 1;
        throw;
      } catch (const weft::cancelled_error&) {
        saw = 0;
        throw;
      }
    };
    const auto start = steady::now();
    CHECK(co_await how_it_ends(weft::timeout(10ms, body(inner_saw))) == ended::timed_out);
    CHECK(inner_saw.load() == 0);  // inside, it was a plain cancellation
    CHECK(steady::now() - start < 5s);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: wait_for and timeout_at expire and succeed like timeout") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    CHECK(co_await weft::wait_for(sleep_then(1ms, 3), 10s) == 3);
    auto start = steady::now();
    CHECK(co_await how_it_ends(weft::wait_for(sleep_then(10s, 3), 10ms)) == ended::timed_out);
    CHECK(steady::now() - start >= 10ms);
    CHECK(steady::now() - start < 5s);

    CHECK(co_await weft::timeout_at(weft::clock::now() + 10s, sleep_then(1ms, 4)) == 4);
    start = steady::now();
    const auto deadline = weft::clock::now() + 15ms;
    CHECK(co_await how_it_ends(weft::timeout_at(deadline, sleep_then(10s, 4))) == ended::timed_out);
    CHECK(weft::clock::now() >= deadline);  // never early
    CHECK(steady::now() - start < 5s);
    // A deadline already past cancels the work at its first cancellation point.
    CHECK(co_await how_it_ends(weft::timeout_at(weft::clock::now() - 1s, sleep_then(1ms, 5))) ==
          ended::timed_out);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: a timeout over a join_handle cancels that task and waits for it") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> cleaned{false};
    auto h = weft::spawn(slow_with_cleanup, std::ref(cleaned));
    bool timed_out = false;
    try {
      (void)co_await weft::timeout(10ms, std::move(h));
    } catch (const weft::timeout_error&) {
      timed_out = true;
      CHECK(cleaned.load());  // the task was cancelled and had finished its cleanup
    }
    CHECK(timed_out);
    CHECK(co_await weft::wait_for(weft::spawn(sleep_then(1ms, 8)), 10s) == 8);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: an expiry after an earlier caught cancellation still reports timeout_error") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  // The task catches a cancellation (its cleanup then runs under a timeout, as asyncio code often
  // does); the timeout must report its own expiry, not the old cancellation (asyncio compares with
  // the cancellation count at the timeout's entry).
  auto outcome = rt.block_on([]() -> weft::task<ended> {
    auto task = weft::spawn([]() -> weft::task<ended> {
      bool cancelled = false;
      try {
        co_await weft::sleep(1h);
      } catch (const weft::cancelled_error&) {
        cancelled = true;
      }
      if (!cancelled) co_return ended::failed;
      co_return co_await how_it_ends(weft::timeout(20ms, sleep_then(1h, 1)));
    });
    co_await weft::sleep(10ms);
    task.cancel();
    co_return co_await task;
  }());
  CHECK(outcome == ended::timed_out);
}

TEST_CASE("timeout: on the virtual clock expiry is exact and takes no real time") {
  weft_test::watchdog dog(10s);
  const auto real_start = steady::now();
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> cleaned{false};
    const auto start = weft::now();
    // A 5 s timeout around a 10 s sleep with a 5 ms cleanup.
    CHECK(co_await how_it_ends(weft::timeout(5s, slow_with_cleanup(cleaned))) == ended::timed_out);
    CHECK(cleaned.load());
    CHECK(weft::now() - start == 5s + 5ms);  // the deadline, then the cleanup's own sleep

    const auto deadline = weft::now() + 30min;
    CHECK(co_await how_it_ends(weft::timeout_at(deadline, sleep_then(24h, 1))) == ended::timed_out);
    CHECK(weft::now() == deadline);  // never early, and not late either on the virtual clock

    const auto before = weft::now();
    CHECK(co_await weft::wait_for(sleep_then(59min, 2), 1h) == 2);
    CHECK(weft::now() - before == 59min);
  };
  weft::run(main_task(), {.worker_threads = 2, .virtual_time = true});
  CHECK(steady::now() - real_start < 5s);
}
