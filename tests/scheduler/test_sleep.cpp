// tests/test_sleep.cpp: weft::sleep, sleep_until and yield_now (patterns.md row 2): concurrent
// sleeps overlap, a sleep never ends early, a million concurrent sleeps work, a sleeping task holds
// no worker, and yield_now lets the other ready tasks run. Durations saturate: the extremes of
// every duration type neither overflow nor end a sleep early (max() sleeps until cancelled) or late
// (min(), zero, minus one and NaN yield).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include <weft/weft.hpp>

#include "support/durations.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

weft::task<std::chrono::nanoseconds> timed_sleep(std::chrono::milliseconds d) {
  const auto start = steady::now();
  co_await weft::sleep(d);
  co_return steady::now() - start;
}

// True if `sleeper` is still running (sleeping) 30 ms after it was spawned; it is cancelled then,
// and must end with cancelled_error.
weft::task<bool> sleeps_until_cancelled(weft::task<> sleeper) {
  auto handle = weft::spawn(std::move(sleeper));
  co_await weft::sleep(30ms);
  const bool sleeping = !handle.done();
  handle.cancel();
  bool cancelled = false;
  try {
    co_await handle;
  } catch (const weft::cancelled_error&) {
    cancelled = true;
  }
  const bool slept_until_cancelled = sleeping && cancelled;
  co_return slept_until_cancelled;
}

// True if awaiting `sleep` returns promptly (it yields; a generous bound for loaded sanitizer
// runs).
template <class Make>
weft::task<bool> returns_at_once(Make make) {
  const auto start = steady::now();
  co_await make();
  co_return steady::now() - start < 1s;
}

template <class D>
weft::task<> sleep_for(D d) {
  co_await weft::sleep(d);
}
template <class TimePoint>
weft::task<> sleep_until_point(TimePoint t) {
  co_await weft::sleep_until(t);
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE(
    "sleep: the extremes of every duration type saturate instead of overflowing", D,
    sleep_extremes) {
  // Before saturation, sleep(hours::min()) overflowed int64 in ceil<nanoseconds> (UBSan: signed
  // integer overflow) and could sleep for centuries.
  weft_test::watchdog dog(20s, "sleeping for an extreme duration");
  auto main_task = []() -> weft::task<> {
    CHECK(co_await sleeps_until_cancelled(sleep_for(D::max())));
    // (No INFO across a co_await: doctest's INFO is thread-local, and the task may move.)
    for (D d : weft_test::expired_extremes<D>()) {
      const bool prompt = co_await returns_at_once([d] { return weft::sleep(d); });
      CHECK_MESSAGE(prompt, ("sleep(" + weft_test::describe(d) + ")"));
    }
    // The same through sleep_until with a time point of the clock in D's units.
    using point = std::chrono::time_point<weft::clock, D>;
    CHECK(co_await sleeps_until_cancelled(sleep_until_point(point::max())));
    CHECK(co_await returns_at_once([] { return weft::sleep_until(point::min()); }));
  };
  weft::run(main_task(), {.worker_threads = 2});
}
TEST_CASE_TEMPLATE_APPLY(sleep_extremes, weft_test::every_integral_duration);

TEST_CASE(
    "sleep: a floating-point duration sleeps forever when huge or infinite and not when NaN") {
  weft_test::watchdog dog(20s, "sleeping for an extreme floating-point duration");
  auto main_task = []() -> weft::task<> {
    for (auto d : weft_test::forever_doubles()) {
      const bool forever = co_await sleeps_until_cancelled(sleep_for(d));
      CHECK_MESSAGE(forever, ("sleep(" + weft_test::describe(d) + ")"));
    }
    // NaN counts as zero: see docs/patterns/timeouts.md.
    for (auto d : weft_test::expired_doubles()) {
      const bool prompt = co_await returns_at_once([d] { return weft::sleep(d); });
      CHECK_MESSAGE(prompt, ("sleep(" + weft_test::describe(d) + ")"));
    }
    // A fraction of a nanosecond rounds up: it still never ends early.
    const auto quarter_ns = std::chrono::duration<double, std::nano>(0.25);
    CHECK(co_await returns_at_once([=] { return weft::sleep(quarter_ns); }));
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("sleep: sleep_until the clock's own extremes sleeps forever or yields") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<> {
    CHECK(co_await sleeps_until_cancelled(sleep_until_point(weft::clock::time_point::max())));
    CHECK(
        co_await returns_at_once([] { return weft::sleep_until(weft::clock::time_point::min()); }));
    CHECK(co_await returns_at_once([] { return weft::sleep_until(weft::clock::time_point{}); }));
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("sleep: three concurrent one second sleeps take about one second") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<std::chrono::nanoseconds> {
    const auto start = steady::now();
    auto [a, b, c] = co_await weft::gather(timed_sleep(1s), timed_sleep(1s), timed_sleep(1s));
    CHECK(a >= 1s);
    CHECK(b >= 1s);
    CHECK(c >= 1s);
    co_return steady::now() - start;
  };
  // One worker: the sleeps overlap because a sleeping task holds no thread.
  const auto elapsed = weft::run(main_task(), {.worker_threads = 1});
  CHECK(elapsed >= 1s);
  CHECK(elapsed < 2s);
}

TEST_CASE("sleep: a sleep never ends early") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<int> {
    int early = 0;
    for (int round = 0; round < 3; ++round) {
      std::vector<weft::task<std::chrono::nanoseconds>> sleeps;
      std::vector<std::chrono::milliseconds> asked;
      for (int ms : {0, 1, 2, 3, 5, 7, 10, 15, 31, 63, 64, 65, 100, 130}) {
        asked.emplace_back(ms);
        sleeps.push_back(timed_sleep(std::chrono::milliseconds(ms)));
      }
      auto took = co_await weft::gather(std::move(sleeps));
      for (std::size_t i = 0; i < took.size(); ++i) {
        if (took[i] < asked[i]) ++early;
      }
    }
    co_return early;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 0);
}

TEST_CASE("sleep: sleep_until wakes at or after the deadline") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<bool> {
    const auto deadline = weft::clock::now() + 30ms;
    co_await weft::sleep_until(deadline);
    const bool on_time = weft::clock::now() >= deadline;
    // A deadline in the past behaves like yield_now.
    co_await weft::sleep_until(weft::clock::now() - 1s);
    co_await weft::sleep(-5ms);
    co_await weft::sleep(0ms);
    co_return on_time;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}));
}

TEST_CASE("sleep: a sleep ends soon after its deadline on an idle runtime") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<std::chrono::nanoseconds> {
    std::chrono::nanoseconds worst{0};
    for (int i = 0; i < 20; ++i) {
      const auto took = co_await timed_sleep(10ms);
      if (took > worst) worst = took;
    }
    co_return worst;
  };
  const auto worst = weft::run(main_task(), {.worker_threads = 2});
  CHECK(worst >= 10ms);
  // Generous: a loaded CI machine under a sanitizer can be slow, but not a whole tick wheel late.
  CHECK(worst < 200ms);
}

TEST_SUITE("stress") {
  TEST_CASE("sleep: one million concurrent sleeps all finish and none early") {
    const std::size_t count =
        weft_test::stress_count(weft_test::sanitized() ? 50'000 : 200'000, 1'000'000);
    weft_test::watchdog dog(240s);
    std::atomic<std::size_t> done{0};
    std::atomic<std::size_t> early{0};
    auto sleeper = [](std::atomic<std::size_t>& finished, std::atomic<std::size_t>& too_early,
                      std::chrono::milliseconds d) -> weft::task<> {
      const auto deadline = weft::clock::now() + d;
      co_await weft::sleep_until(deadline);
      if (weft::clock::now() < deadline) too_early.fetch_add(1, std::memory_order_relaxed);
      finished.fetch_add(1, std::memory_order_relaxed);
    };
    auto main_task = [&]() -> weft::task<> {
      std::vector<weft::join_handle<void>> handles;
      handles.reserve(count);
      for (std::size_t i = 0; i < count; ++i) {
        handles.push_back(weft::spawn(sleeper(done, early, std::chrono::milliseconds(i % 200))));
      }
      for (auto& h : handles)
        co_await h;
    };
    weft::runtime rt({.worker_threads = 2});
    rt.block_on(main_task());
    CHECK(done == count);
    CHECK(early == 0);
    CHECK(rt.stats().timers == 0);
  }
}

TEST_CASE("sleep: a sleeping task holds no worker") {
  // With one worker, a task that sleeps for a long time must not stop another from running.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    auto long_sleeper = weft::spawn([]() -> weft::task<int> {
      co_await weft::sleep(300ms);
      co_return 1;
    });
    auto quick = weft::spawn([]() -> weft::task<int> { co_return 2; });
    const auto start = steady::now();
    const int q = co_await quick;
    CHECK(steady::now() - start < 250ms);
    co_return q + co_await long_sleeper;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}) == 3);
}

TEST_CASE("sleep: yield_now lets the other ready tasks run") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<bool> {
    // One worker: the other task can only run while this one yields.
    std::atomic<bool> other_ran{false};
    auto h = weft::spawn(
        [](std::atomic<bool>& flag) -> weft::task<> {
          flag = true;
          co_return;
        },
        std::ref(other_ran));
    for (int i = 0; i < 100 && !other_ran; ++i)
      co_await weft::yield_now();
    const bool ran = other_ran;
    co_await h;
    co_return ran;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}));
}

TEST_CASE("sleep: two yielding tasks on one worker alternate") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    std::atomic<int> turn{0};
    std::atomic<int> out_of_turn{0};
    auto ping = [](std::atomic<int>& t, std::atomic<int>& bad, int me) -> weft::task<> {
      for (int i = 0; i < 100; ++i) {
        // Each waits for its turn by yielding; the other must get to run meanwhile.
        int spins = 0;
        while (t.load() % 2 != me) {
          co_await weft::yield_now();
          if (++spins > 100000) {
            ++bad;
            co_return;
          }
        }
        t.fetch_add(1);
      }
    };
    auto a = weft::spawn(ping(turn, out_of_turn, 0));
    auto b = weft::spawn(ping(turn, out_of_turn, 1));
    co_await a;
    co_await b;
    co_return out_of_turn.load() == 0 ? turn.load() : -1;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}) == 200);
}

TEST_CASE("sleep: sleep and yield_now outside a runtime throw logic_error") {
  weft_test::watchdog dog(10s);
  // Without a runtime there is nothing to resume a coroutine, so drive the awaiters directly.
  weft::sleep_awaiter s = weft::sleep(1ms);
  CHECK_THROWS_AS(s.await_suspend(std::noop_coroutine()), std::logic_error);
  weft::yield_awaiter y = weft::yield_now();
  CHECK_THROWS_AS(y.await_suspend(std::noop_coroutine()), std::logic_error);
}
