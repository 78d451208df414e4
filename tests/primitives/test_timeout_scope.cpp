// tests/primitives/test_timeout_scope.cpp: weft::timeout_scope, asyncio.timeout's context manager
// object (Python 3.11): when(), expired(), reschedule() from inside the work (later, earlier, past,
// disabled), a scope that starts disabled (asyncio.timeout(None)) and weft::timeout(std::nullopt,
// work). Most cases are ported from CPython's Lib/test/test_asyncio/test_timeouts.py and run on
// the virtual clock, where a deadline is exact; the last one races reschedule with the poller's
// expiry on the real clock.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

#include <weft/weft.hpp>

#include "support/outcomes.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::sleep_then;

weft::runtime_options virtual_clock() { return {.worker_threads = 2, .virtual_time = true}; }

// Runs `body` on a virtual-clock runtime under a watchdog.
template <class F>
void on_virtual_clock(F body) {
  weft_test::watchdog dog(20s);
  weft::run(body(), virtual_clock());
}

// Moves `scope`'s deadline to `to` at once (while the timer is lazy: the work has reached no
// cancellation point) or after a yield (armed in the wheel), then sleeps for `sleep`.
weft::task<int> reschedule_then_sleep(weft::timeout_scope& scope,
                                      std::optional<weft::clock::time_point> to, bool after_yield,
                                      std::chrono::milliseconds sleep) {
  if (after_yield) co_await weft::yield_now();
  scope.reschedule(to);
  co_await weft::sleep(sleep);
  co_return 7;
}

}  // namespace

TEST_CASE("timeout scope: an expired scope reports expired and keeps its deadline") {
  on_virtual_clock([]() -> weft::task<> {
    const auto deadline = weft::now() + 10ms;
    auto scope = weft::timeout_scope::at(deadline);  // test_timeout_at_basic
    CHECK(co_await how_it_ends(weft::timeout(scope, sleep_then(10s, 1))) == ended::timed_out);
    CHECK(scope.expired());
    CHECK(scope.when() == deadline);
    CHECK(weft::now() == deadline);
  });
}

TEST_CASE("timeout scope: a scope that did not expire is not expired and its deadline is ahead") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(10s);  // test_timeout_not_called: the deadline is fixed when made
    const auto made = weft::now();
    CHECK(co_await weft::timeout(scope, sleep_then(10ms, 1)) == 1);
    CHECK_FALSE(scope.expired());
    CHECK(scope.when() == made + 10s);
    CHECK(scope.when() > weft::now());
  });
}

TEST_CASE("timeout scope: a disabled scope never expires and has no deadline") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(std::nullopt);  // test_timeout_disabled
    CHECK(co_await weft::timeout(scope, sleep_then(24h, 1)) == 1);
    CHECK_FALSE(scope.expired());
    CHECK(scope.when() == std::nullopt);
    CHECK(co_await weft::timeout(std::nullopt, sleep_then(24h, 2)) == 2);  // no scope needed
  });
}

TEST_CASE("timeout scope: a zero or past delay expires at the first cancellation point") {
  on_virtual_clock([]() -> weft::task<> {
    // test_timeout_zero, test_timeout_zero_sleep_zero, test_timeout_in_the_past_sleep_zero.
    const auto t0 = weft::now();
    weft::timeout_scope zero(0s);
    CHECK(co_await how_it_ends(weft::timeout(zero, sleep_then(10s, 1))) == ended::timed_out);
    CHECK(zero.expired());
    CHECK(zero.when() == t0);
    weft::timeout_scope past(-11s);
    CHECK(co_await how_it_ends(weft::timeout(past, []() -> weft::task<int> {
            co_await weft::yield_now();
            co_return 1;
          }())) == ended::timed_out);
    CHECK(past.expired());
    CHECK(past.when() < t0);
    CHECK(weft::now() == t0);
  });
}

TEST_CASE("timeout scope: a foreign exception passes and the scope is not expired") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(10ms);  // test_foreign_exception_passed
    CHECK(co_await how_it_ends(weft::timeout(scope, []() -> weft::task<int> {
            throw std::runtime_error("key error");
            co_return 1;
          }())) == ended::failed);
    CHECK_FALSE(scope.expired());
  });
}

TEST_CASE("timeout scope: a cancellation from inside is not a timeout and does not expire it") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(10s);  // test_foreign_cancel_doesnt_timeout_if_not_expired
    CHECK(co_await how_it_ends(weft::timeout(scope, []() -> weft::task<int> {
            (co_await weft::current_task()).cancel();
            co_await weft::sleep(10s);
            co_return 1;
          }())) == ended::cancelled);
    CHECK_FALSE(scope.expired());
    (co_await weft::current_task()).uncancel();  // the test task goes on
  });
}

TEST_CASE("timeout scope: nested scopes with one deadline both expire and only the outer reports") {
  on_virtual_clock([]() -> weft::task<> {
    // test_nested_timeouts: the inner one sees cancelled_error (the outer's request stands).
    const auto deadline = weft::now() + 10ms;
    auto outer = weft::timeout_scope::at(deadline);
    auto inner = weft::timeout_scope::at(deadline);
    bool inner_cancelled = false;
    auto work = [](weft::timeout_scope& in, bool& cancelled) -> weft::task<int> {
      try {
        co_return co_await weft::timeout(in, sleep_then(10s, 1));
      } catch (const weft::cancelled_error&) {
        cancelled = true;
        throw;
      }
    };
    CHECK(co_await how_it_ends(weft::timeout(outer, work(inner, inner_cancelled))) ==
          ended::timed_out);
    CHECK(inner_cancelled);
    CHECK(outer.expired());
    CHECK(inner.expired());
  });
}

TEST_CASE(
    "timeout scope: when follows reschedule and a cancellation from outside stays cancelled") {
  on_virtual_clock([]() -> weft::task<> {
    // test_reschedule, with the reschedules made by the task inside the scope (weft's rule).
    const auto deadline1 = weft::now() + 10s;
    const auto deadline2 = deadline1 + 20s;
    auto scope = weft::timeout_scope::at(deadline1);
    auto handle = weft::spawn([](weft::timeout_scope& s, weft::clock::time_point d1,
                                 weft::clock::time_point d2) -> weft::task<int> {
      co_return co_await weft::timeout(
          s,
          [](weft::timeout_scope& s2, weft::clock::time_point d1b,
             weft::clock::time_point d2b) -> weft::task<int> {
            CHECK(s2.when() == d1b);
            s2.reschedule(d2b);
            CHECK(s2.when() == d2b);
            co_await weft::yield_now();  // armed now; move it again while it is in the wheel
            s2.reschedule(std::nullopt);
            CHECK(s2.when() == std::nullopt);
            co_await weft::sleep(50s);
            co_return 1;
          }(s, d1, d2));
    }(scope, deadline1, deadline2));
    co_await weft::sleep(1s);
    handle.cancel();
    CHECK(co_await how_it_ends(handle) == ended::cancelled);
    CHECK_FALSE(scope.expired());
  });
}

TEST_CASE("timeout scope: rescheduling to a later deadline from inside lets the work finish") {
  for (const bool after_yield : {false, true}) {
    on_virtual_clock([after_yield]() -> weft::task<> {
      weft::timeout_scope scope(10ms);
      const auto later = weft::now() + 1s;
      CHECK(co_await weft::timeout(scope,
                                   reschedule_then_sleep(scope, later, after_yield, 500ms)) == 7);
      CHECK_FALSE(scope.expired());
      CHECK(scope.when() == later);
    });
  }
}

TEST_CASE("timeout scope: rescheduling to an earlier deadline from inside expires at that one") {
  for (const bool after_yield : {false, true}) {
    on_virtual_clock([after_yield]() -> weft::task<> {
      weft::timeout_scope scope(1h);
      const auto start = weft::now();
      CHECK(co_await how_it_ends(
                weft::timeout(scope, reschedule_then_sleep(scope, start + 5s, after_yield, 10s))) ==
            ended::timed_out);
      CHECK(scope.expired());
      CHECK(weft::now() == start + 5s);
    });
  }
}

TEST_CASE("timeout scope: rescheduling to a past deadline expires at the next cancellation point") {
  for (const bool after_yield : {false, true}) {
    on_virtual_clock([after_yield]() -> weft::task<> {
      weft::timeout_scope scope(1h);
      bool ran_on = false;
      auto work = [](weft::timeout_scope& s, bool yield_first, bool& ran) -> weft::task<int> {
        if (yield_first) co_await weft::yield_now();
        s.reschedule(weft::now() - 1s);
        ran = true;  // no cancellation point between: the work goes on to the next one
        co_await weft::sleep(10s);
        co_return 1;
      };
      const auto start = weft::now();
      CHECK(co_await how_it_ends(weft::timeout(scope, work(scope, after_yield, ran_on))) ==
            ended::timed_out);
      CHECK(ran_on);
      CHECK(scope.expired());
      CHECK(weft::now() == start);
    });
  }
}

TEST_CASE(
    "timeout scope: rescheduling to disabled from inside lets the work outlive the deadline") {
  for (const bool after_yield : {false, true}) {
    weft_test::watchdog dog(20s);
    weft::runtime rt(virtual_clock());
    auto main_task = [](bool yield_first, weft::runtime& r) -> weft::task<> {
      weft::timeout_scope scope(10ms);
      CHECK(co_await weft::timeout(
                scope, reschedule_then_sleep(scope, std::nullopt, yield_first, 1s)) == 7);
      CHECK_FALSE(scope.expired());
      CHECK(scope.when() == std::nullopt);
      CHECK(r.stats().timers == 0);  // nothing left in the wheel
    };
    rt.block_on(main_task(after_yield, rt));
  }
}

TEST_CASE("timeout scope: a scope that starts disabled expires where a reschedule puts it") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(std::nullopt);
    const auto start = weft::now();
    CHECK(co_await how_it_ends(weft::timeout(
              scope, reschedule_then_sleep(scope, start + 5s, false, 1h))) == ended::timed_out);
    CHECK(scope.expired());
    CHECK(weft::now() == start + 5s);
  });
}

TEST_CASE("timeout scope: a reschedule before the awaiting moves the deadline it starts with") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(std::nullopt);
    const auto start = weft::now();
    scope.reschedule(start + 3s);  // asyncio raises here ("has not been entered"); weft allows it
    CHECK(co_await how_it_ends(weft::timeout(scope, sleep_then(1h, 1))) == ended::timed_out);
    CHECK(weft::now() == start + 3s);
  });
}

TEST_CASE("timeout scope: an outer scope moved from inside a nested timeout expires the outer") {
  on_virtual_clock([]() -> weft::task<> {
    // The nested timeout is the task's lazily armed one, so the outer is armed at once.
    weft::timeout_scope outer(std::nullopt);
    const auto start = weft::now();
    auto work = [](weft::timeout_scope& o) -> weft::task<int> {
      try {
        co_return co_await weft::timeout(1h, [](weft::timeout_scope& o2) -> weft::task<int> {
          o2.reschedule(weft::now() + 5ms);
          co_await weft::sleep(10s);
          co_return 1;
        }(o));
      } catch (const weft::timeout_error&) {
        FAIL("the inner timeout did not expire");
        throw;
      }
    };
    CHECK(co_await how_it_ends(weft::timeout(outer, work(outer))) == ended::timed_out);
    CHECK(outer.expired());
    CHECK(weft::now() == start + 5ms);
  });
}

TEST_CASE("timeout scope: a scope is awaited once and cannot be moved after it ended") {
  on_virtual_clock([]() -> weft::task<> {
    weft::timeout_scope scope(1s);  // test_timeout_double_enter, test_timeout_finished
    CHECK(co_await weft::timeout(scope, sleep_then(1ms, 1)) == 1);
    CHECK_THROWS_AS(scope.reschedule(weft::now() + 1s), std::logic_error);
    bool refused = false;
    try {
      (void)co_await weft::timeout(scope, sleep_then(1ms, 2));
    } catch (const std::logic_error&) {
      refused = true;
    }
    CHECK(refused);
  });
}

TEST_CASE("timeout scope: a reschedule racing the expiry either wins or leaves the scope expired") {
  // Real clock: the poller fires a 1 ms deadline while the work, computing, moves it an hour
  // ahead; the outcome must match expired() whichever came first, and no timer is left behind.
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  const int rounds = static_cast<int>(weft_test::stress_count(200, 5000));
  auto main_task = [](int n, weft::runtime& r) -> weft::task<int> {
    int consistent = 0;
    for (int i = 0; i < n; ++i) {
      weft::timeout_scope scope(1ms);
      auto work = [](weft::timeout_scope& s, int spin_us) -> weft::task<int> {
        co_await weft::yield_now();  // armed
        const auto end = steady::now() + std::chrono::microseconds(spin_us);
        while (steady::now() < end) {
        }
        s.reschedule(weft::now() + 1h);
        co_await weft::sleep(1ms);
        co_return 1;
      };
      const ended how = co_await how_it_ends(weft::timeout(scope, work(scope, (i % 20) * 100)));
      if ((how == ended::timed_out) == scope.expired() &&
          (how == ended::timed_out || how == ended::value)) {
        ++consistent;
      }
    }
    CHECK(r.stats().timers == 0);
    co_return consistent;
  };
  CHECK(rt.block_on(main_task(rounds, rt)) == rounds);
}
