// tests/test_timeout.cpp: weft::timeout, timeout_at and wait_for (patterns.md row 4): expiry
// cancels the inner work, waits for its cleanup, then throws timeout_error; success leaves no timer
// and no stale cancellation behind; a cancellation from outside stays cancelled_error; nested
// timeouts report at the one that expired; a timeout over a join_handle cancels that task. The
// extremes of every duration type saturate: max() never expires, min(), zero, minus one and NaN
// expire at the work's first cancellation point (work that reaches none returns its value).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/durations.hpp"
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

weft::task<int> at_once(int v) { co_return v; }

// Checks, for a duration `d` that means "never", that timeout, wait_for and a timeout over a
// handle all let 20 ms of work finish.
// Checks, for a duration `d` that means "never", that timeout, wait_for and a timeout over a
// handle all let 20 ms of work finish. (No INFO here: doctest's INFO is thread-local, and a
// coroutine may resume on another worker; each result is awaited first, then checked.)
template <class D>
weft::task<> never_expires(D d) {
  const std::string what = "duration " + weft_test::describe(d);
  const ended on_task = co_await how_it_ends(weft::timeout(d, sleep_then(20ms, 1)));
  CHECK_MESSAGE(on_task == ended::value, what);
  const int value = co_await weft::wait_for(sleep_then(20ms, 2), d);
  CHECK_MESSAGE(value == 2, what);
  const int on_handle = co_await weft::wait_for(weft::spawn(sleep_then(20ms, 3)), d);
  CHECK_MESSAGE(on_handle == 3, what);
  const std::optional<int> optional = co_await weft::timeout_optional(d, sleep_then(1ms, 4));
  CHECK_MESSAGE(optional == 4, what);
}

// Checks, for a duration `d` that means "expired already", that the work is cancelled at its
// first cancellation point, promptly, and that work with no cancellation point returns its value.
template <class D>
weft::task<> expires_at_once(D d) {
  const std::string what = "duration " + weft_test::describe(d);
  const auto start = steady::now();
  const ended on_task = co_await how_it_ends(weft::timeout(d, sleep_then(10s, 1)));
  CHECK_MESSAGE(on_task == ended::timed_out, what);
  const ended on_handle = co_await how_it_ends(weft::wait_for(weft::spawn(sleep_then(10s, 2)), d));
  CHECK_MESSAGE(on_handle == ended::timed_out, what);
  const std::optional<int> optional = co_await weft::timeout_optional(d, sleep_then(10s, 3));
  CHECK_MESSAGE(optional == std::nullopt, what);
  CHECK_MESSAGE(steady::now() - start < 5s, what);
  const int value = co_await weft::timeout(d, at_once(4));
  CHECK_MESSAGE(value == 4, what);
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE(
    "timeout: the extremes of every duration type saturate instead of overflowing", D,
    timeout_extremes) {
  // Before saturation, timeout(hours::max(), work) timed out at once: ceil<nanoseconds> overflowed
  // int64 (UBSan: signed integer overflow) and wrapped negative.
  weft_test::watchdog dog(30s, "awaiting a timeout of an extreme duration");
  auto main_task = []() -> weft::task<> {
    co_await never_expires(D::max());
    for (D d : weft_test::expired_extremes<D>())
      co_await expires_at_once(d);
    // timeout_at with a time point of the clock in D's units.
    using point = std::chrono::time_point<weft::clock, D>;
    CHECK(co_await how_it_ends(weft::timeout_at(point::max(), sleep_then(20ms, 5))) ==
          ended::value);
    CHECK(co_await how_it_ends(weft::timeout_at(point::min(), sleep_then(10s, 6))) ==
          ended::timed_out);
  };
  weft::run(main_task(), {.worker_threads = 2});
}
TEST_CASE_TEMPLATE_APPLY(timeout_extremes, weft_test::every_integral_duration);

TEST_CASE(
    "timeout: a floating-point duration never expires when huge or infinite and at once when NaN") {
  weft_test::watchdog dog(30s, "awaiting a timeout of an extreme floating-point duration");
  auto main_task = []() -> weft::task<> {
    for (auto d : weft_test::forever_doubles())
      co_await never_expires(d);
    for (auto d : weft_test::expired_doubles())  // NaN counts as zero (docs/patterns/timeouts.md)
      co_await expires_at_once(d);
    CHECK(co_await how_it_ends(weft::timeout_at(weft::clock::time_point::max(),
                                                sleep_then(20ms, 7))) == ended::value);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

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

TEST_CASE("timeout: a timeout awaited a second time throws logic_error and runs nothing again") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> runs{0};
    auto work = [](std::atomic<int>& n) -> weft::task<int> {
      ++n;
      co_return 7;
    };
    auto timed = weft::timeout(60s, work(runs));
    CHECK(co_await timed == 7);
    std::string message;
    try {
      (void)co_await timed;
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    CHECK(message.find("awaited twice") != std::string::npos);
    CHECK(runs.load() == 1);
    // A timeout moved into a task is awaited through that task; the moved-from one is empty.
    auto original = weft::timeout(60s, work(runs));
    weft::task<int> as_task = std::move(original);
    CHECK(co_await std::move(as_task) == 7);
    CHECK_THROWS_AS((void)co_await original, std::logic_error);
    CHECK(runs.load() == 2);
  };
  weft::run(main_task(), {.worker_threads = 2});
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

// The timer of a timeout is armed lazily, at the first cancellation point the work reaches
// (task_header::timeout_to_arm). The cases below pin down that this changes nothing observable.

namespace {

// Computes for `d` without reaching a cancellation point.
void busy_for(std::chrono::microseconds d) {
  const auto end = steady::now() + d;
  while (steady::now() < end) {
  }
}

}  // namespace

TEST_CASE(
    "timeout: work that reaches no cancellation point arms no timer; the first point arms it") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = [](weft::runtime& r) -> weft::task<int> {
    int sum = 0;
    for (int i = 0; i < 1000; ++i) {
      sum += co_await weft::timeout(60s, [](weft::runtime& r2) -> weft::task<int> {
        CHECK(r2.stats().timers == 0);  // not armed while the work has not reached a point
        co_return 1;
      }(r));
    }
    CHECK(r.stats().timers == 0);
    sum += co_await weft::timeout(60s, [](weft::runtime& r2) -> weft::task<int> {
      CHECK(r2.stats().timers == 0);
      co_await weft::yield_now();  // a cancellation point: arms the timeout
      CHECK(r2.stats().timers == 1);
      co_return 1;
    }(r));
    CHECK(r.stats().timers == 0);  // disarmed on success
    co_return sum;
  };
  CHECK(rt.block_on(main_task(rt)) == 1001);
  CHECK(timers_once_idle(rt) == 0);
}

TEST_CASE(
    "timeout: a deadline that passes before the work first suspends cancels it at its first "
    "point") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<> {
    // Computes past the deadline, then reaches a sleep: the sleep throws at once.
    const auto start = steady::now();
    CHECK(co_await how_it_ends(weft::timeout(2ms, []() -> weft::task<int> {
            busy_for(20ms);
            co_await weft::sleep(10s);
            co_return 1;
          }())) == ended::timed_out);
    CHECK(steady::now() - start < 5s);
    // The same with yield_now as the first point, and with timeout_at.
    CHECK(co_await how_it_ends(weft::timeout_at(weft::now() + 2ms, []() -> weft::task<int> {
            busy_for(20ms);
            for (;;)
              co_await weft::yield_now();
          }())) == ended::timed_out);
    // A deadline already past at entry, with work that reaches a point at once.
    CHECK(co_await how_it_ends(weft::timeout_at(weft::now() - 1s, []() -> weft::task<> {
            co_await weft::yield_now();
          }())) == ended::timed_out);
    // Nothing stray is left: this task's next points are not cancelled.
    CHECK(co_await how_it_ends(weft::sleep(1ms)) == ended::value);
    CHECK(co_await how_it_ends(weft::yield_now()) == ended::value);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: nested timeouts arm the pending outer one when the inner one begins") {
  weft_test::watchdog dog(20s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = [](weft::runtime& r) -> weft::task<> {
    // Entering the inner timeout arms the outer one (one timer); the inner one stays unarmed
    // until the work's first point.
    auto inner_work = [](weft::runtime& r2) -> weft::task<int> {
      CHECK(r2.stats().timers == 1);
      co_await weft::yield_now();
      CHECK(r2.stats().timers == 2);
      co_return 3;
    };
    auto body = [](weft::runtime& r2, auto work) -> weft::task<int> {
      CHECK(r2.stats().timers == 0);
      co_return co_await weft::timeout(60s, work(r2));
    };
    CHECK(co_await weft::timeout(60s, body(r, inner_work)) == 3);
    CHECK(r.stats().timers == 0);

    // An outer expiry while the inner timeout is armed lazily: the outer one reports.
    bool inner_saw_cancel = false;
    CHECK(co_await how_it_ends(weft::timeout(10ms, [](bool& saw) -> weft::task<int> {
            try {
              co_return co_await weft::timeout(10s, sleep_then(10s, 1));
            } catch (const weft::timeout_error&) {
              co_return -1;  // wrong: the inner timeout did not expire
            } catch (const weft::cancelled_error&) {
              saw = true;
              throw;
            }
          }(inner_saw_cancel))) == ended::timed_out);
    CHECK(inner_saw_cancel);

    // Both deadlines pass before the first point: the outer one expired before the inner one
    // began (its request is older), so the inner one reports, and the outer lets it through.
    auto both = []() -> weft::task<std::string> {
      busy_for(10ms);
      try {
        (void)co_await weft::timeout(1ms, []() -> weft::task<int> {
          busy_for(10ms);
          co_await weft::sleep(10s);
          co_return 1;
        }());
      } catch (const weft::timeout_error&) {
        co_return "inner";
      }
      co_return "none";
    };
    CHECK(co_await weft::timeout(1ms, both()) == "inner");
    CHECK(co_await how_it_ends(weft::sleep(1ms)) == ended::value);  // nothing stray
  };
  rt.block_on(main_task(rt));
  CHECK(timers_once_idle(rt) == 0);
}

TEST_CASE("timeout: an expired timeout takes its request back when the work fails otherwise") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    // The timer is armed (yield_now), fires while the work computes, and the work then throws
    // without reaching another point: the error comes out, and no cancellation stays pending.
    CHECK(co_await how_it_ends(weft::timeout(2ms, []() -> weft::task<int> {
            co_await weft::yield_now();
            busy_for(30ms);
            throw std::runtime_error("boom");
          }())) == ended::failed);
    CHECK(co_await how_it_ends(weft::sleep(1ms)) == ended::value);
    CHECK(co_await how_it_ends(weft::yield_now()) == ended::value);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: a task that fails inside unarmed timeouts ends with its own exception") {
  // The work throws before any cancellation point, so neither timer was ever armed: both timeouts
  // leave their task's header before the exception is stored in the word they used.
  weft_test::watchdog dog(10s);
  auto throws_at_once = []() -> weft::task<int> {
    throw std::runtime_error("inner");
    co_return 0;
  };
  auto nested = [](weft::task<int> work) -> weft::task<int> {
    co_return co_await weft::timeout(10s, weft::task<int>(weft::timeout(20s, std::move(work))));
  };
  auto main_task = [&]() -> weft::task<> {
    auto handle = weft::spawn(nested(throws_at_once()));
    CHECK_THROWS_WITH_AS(co_await handle, "inner", std::runtime_error);
    auto [a, b] = co_await weft::fork_join(nested(throws_at_once()),
                                           weft::task<int>(weft::timeout(10s, at_once(2))));
    (void)a;
    (void)b;
  };
  CHECK_THROWS_WITH_AS(weft::run(main_task(), {.worker_threads = 2}), "inner", std::runtime_error);
}

TEST_CASE("timeout: spawn gather and task groups take a timeout as they take a task") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::vector<weft::task<int>> tasks;
    tasks.push_back(weft::timeout(10s, sleep_then(1ms, 1)));
    tasks.push_back(weft::timeout(10s, sleep_then(2ms, 2)));
    const std::vector<int> values = co_await weft::gather(std::move(tasks));
    CHECK(values == std::vector<int>{1, 2});
    auto [a, b] = co_await weft::gather(weft::timeout(10s, sleep_then(1ms, 5)),
                                        weft::wait_for(sleep_then(1ms, 6), 10s));
    CHECK(a == 5);
    CHECK(b == 6);
    auto h = weft::spawn(weft::timeout(5ms, sleep_then(10s, 3)));
    CHECK(co_await how_it_ends(h) == ended::timed_out);
    auto explicit_task = weft::spawn(weft::task<int>(weft::timeout(10s, sleep_then(1ms, 7))));
    CHECK(co_await explicit_task == 7);
    weft::task_group group;
    auto child = group.spawn(weft::timeout(10s, sleep_then(1ms, 8)));
    co_await group.join();
    CHECK(child.result() == 8);
    auto awaitable = weft::wait_for(weft::spawn(sleep_then(1ms, 4)), 10s);
    CHECK(co_await awaitable == 4);  // an lvalue awaitable
  };
  weft::run(main_task(), {.worker_threads = 2});
  weft::runtime rt({.worker_threads = 1});
  CHECK(rt.block_on(weft::timeout(10s, sleep_then(1ms, 9))) == 9);
  auto from_outside = rt.spawn(weft::timeout(1ms, sleep_then(10s, 10)));  // runtime::spawn
  auto join = [](weft::join_handle<int> h) -> weft::task<ended> {
    co_return co_await how_it_ends(h);
  };
  CHECK(rt.block_on(join(std::move(from_outside))) == ended::timed_out);
}

TEST_CASE("timeout: a relative timeout starts its clock when it is awaited not when it is made") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto relative = weft::timeout(100ms, sleep_then(50ms, 1));
    auto fixed = weft::timeout_at(weft::now() + 100ms, sleep_then(50ms, 2));
    co_await weft::sleep(80ms);     // virtual time: exactly 80 ms pass
    CHECK(co_await relative == 1);  // its 100 ms began now: 50 ms of work fits
    CHECK(co_await how_it_ends(std::move(fixed)) == ended::timed_out);  // 20 ms were left
  };
  weft::run(main_task(), {.worker_threads = 1, .virtual_time = true});
}

// timeout(d) of 1 s or more reads a coarse clock at its start (an upper bound of now, four kernel
// ticks ahead) and narrows the deadline when it arms the timer: never early, though the coarse
// clock lags.
TEST_CASE("timeout: a long relative timeout on the real clock never expires before its duration") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<> {
    const auto start = steady::now();
    CHECK(co_await how_it_ends(weft::timeout(1s, sleep_then(10s, 1))) == ended::timed_out);
    CHECK(steady::now() - start >= 1s);
    // Armed late (after 6 ms of computing): the bound taken at the start still holds.
    const auto late_start = steady::now();
    CHECK(co_await how_it_ends(weft::timeout(1s, []() -> weft::task<int> {
            busy_for(6ms);
            co_await weft::sleep(10s);
            co_return 1;
          }())) == ended::timed_out);
    const auto took = steady::now() - late_start;
    CHECK(took >= 1s);
    CHECK(took < 5s);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("timeout: the start bound of a relative timeout is never before now nor far ahead") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    for (int i = 0; i < 1000; ++i) {
      const auto before = steady::now();
      const auto bound = weft::detail::timeout_start_bound();
      CHECK(bound >= before);
      CHECK(bound - before <= 100ms);  // four coarse steps of 1 to 10 ms; generous when busy
    }
    co_return;
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("timeout: outside cancellation racing the lazy arm (stress)") {
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = []() -> weft::task<int> {
    int wrong = 0;
    for (int round = 0; round < 300; ++round) {
      // A child that keeps entering short timeouts whose work reaches a point at once (arming
      // them), while this task cancels it at a varying moment.
      auto child = weft::spawn([](int seed) -> weft::task<int> {
        int timed_out = 0;
        for (int i = 0; i < 20; ++i) {
          try {
            (void)co_await weft::timeout(std::chrono::microseconds((seed * 7 + i * 13) % 400),
                                         [](int k) -> weft::task<int> {
                                           if (k % 3 == 0) co_await weft::yield_now();
                                           if (k % 3 == 1) co_await weft::sleep(0ms);
                                           if (k % 3 == 2) co_await weft::sleep(1ms);
                                           co_return k;
                                         }(seed + i));
          } catch (const weft::timeout_error&) {
            ++timed_out;
          }
        }
        co_return timed_out;
      }(round));
      for (int y = 0; y < round % 5; ++y)
        co_await weft::yield_now();
      child.cancel();
      const ended e = co_await how_it_ends(child);
      if (e != ended::cancelled && e != ended::value) ++wrong;
    }
    co_return wrong;
  };
  CHECK(rt.block_on(main_task()) == 0);
  CHECK(timers_once_idle(rt) == 0);
}

TEST_CASE("wait_for: a zero or negative timeout throws without starting a task") {
  // test_waitfor (wait_for with timeout <= 0 on a coroutine raises TimeoutError, the coroutine
  // never runs); timeout(0s) instead runs the work to its first cancellation point.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> started{0};
    auto work = [](std::atomic<int>& s) -> weft::task<int> {
      ++s;
      co_return 1;
    };
    CHECK_THROWS_AS(co_await weft::wait_for(work(started), 0s), weft::timeout_error);
    CHECK_THROWS_AS(co_await weft::wait_for(work(started), -5ms), weft::timeout_error);
    CHECK(started.load() == 0);
    CHECK(co_await weft::timeout(0s, work(started)) == 1);  // no cancellation point reached
    CHECK(started.load() == 1);
    CHECK(co_await weft::wait_for(work(started), 1s) == 1);
    // A spawned task runs already: it is cancelled and awaited (a finished one gives its value).
    auto handle = weft::spawn(work(started));
    while (!handle.done())
      co_await weft::sleep(1ms);
    CHECK(co_await weft::wait_for(std::move(handle), 0s) == 1);
  };
  weft::run(main_task(), {.worker_threads = 2});
}
