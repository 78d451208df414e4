// tests/test_patterns.cpp: the seed guide's common patterns (patterns.md rows 20-22): retry with
// exponential backoff (delays checked on the virtual clock), bounded concurrency (map_bounded,
// process_in_batches), the token-bucket rate_limiter, and per-item timeouts in a gather.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::runtime_options virtual_clock() {
  weft::runtime_options options;
  options.worker_threads = 2;
  options.virtual_time = true;
  return options;
}

std::chrono::milliseconds since(weft::clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(weft::now() - start);
}

// Fails `failures` times (recording when each attempt started), then returns 42.
struct flaky {
  int failures;
  std::vector<weft::clock::time_point>* attempts;
  weft::task<int> operator()() {
    attempts->push_back(weft::now());
    if (static_cast<int>(attempts->size()) <= failures) throw std::runtime_error("flaky");
    co_return 42;
  }
};

}  // namespace

TEST_CASE("retry: the delays between attempts follow the exponential policy") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<weft::clock::time_point> attempts;
  const int value = rt.block_on([&]() -> weft::task<int> {
    co_return co_await weft::retry(flaky{3, &attempts},
                                   {.attempts = 5, .base_delay = 100ms, .max_delay = 250ms});
  }());
  CHECK(value == 42);
  REQUIRE(attempts.size() == 4);
  // 100 ms, then 200 ms, then capped at 250 ms.
  CHECK(attempts[1] - attempts[0] == 100ms);
  CHECK(attempts[2] - attempts[1] == 200ms);
  CHECK(attempts[3] - attempts[2] == 250ms);
}

TEST_CASE("retry: backoff delays saturate instead of overflowing and NaN means no delay") {
  using std::chrono::milliseconds;
  // Before saturation: a max_delay of milliseconds::max() is 2^63 as a double, and converting
  // that (or a NaN from a NaN multiplier) back to long long was undefined behaviour.
  const weft::retry_policy huge{
      .base_delay = 1ms, .max_delay = milliseconds::max(), .multiplier = 1e300};
  CHECK(huge.delay_after(1) == 1ms);
  CHECK(huge.delay_after(3) == milliseconds::max());
  CHECK(huge.delay_after(1000) == milliseconds::max());
  const weft::retry_policy infinite{.base_delay = 1ms,
                                    .max_delay = milliseconds::max(),
                                    .multiplier = std::numeric_limits<double>::infinity()};
  CHECK(infinite.delay_after(2) == milliseconds::max());
  const weft::retry_policy nan{
      .base_delay = 10ms, .max_delay = 1s, .multiplier = std::numeric_limits<double>::quiet_NaN()};
  CHECK(nan.delay_after(1) == 10ms);
  CHECK(nan.delay_after(2) == 0ms);
  const weft::retry_policy negative{.base_delay = milliseconds::min(), .max_delay = 1s};
  CHECK(negative.delay_after(2) <= 0ms);
}

TEST_CASE("retry: extreme delays neither overflow nor hang: the minimum retries at once") {
  weft_test::watchdog dog(10s, "retrying with extreme delays");
  std::vector<weft::clock::time_point> attempts;
  // Real time: a negative delay must retry at once, not after a wrapped-around centuries.
  weft::runtime rt({.worker_threads = 2});
  const auto start = std::chrono::steady_clock::now();
  const int value = rt.block_on(weft::retry(
      flaky{2, &attempts},
      {.attempts = 3, .base_delay = std::chrono::milliseconds::min(), .max_delay = 1h}));
  CHECK(value == 42);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  // The maximum sleeps until cancelled.
  attempts.clear();
  auto forever =
      rt.spawn(weft::retry(flaky{1, &attempts}, {.attempts = 2,
                                                 .base_delay = std::chrono::milliseconds::max(),
                                                 .max_delay = std::chrono::milliseconds::max(),
                                                 .jitter = weft::retry_policy::jitter_type::full}));
  std::this_thread::sleep_for(30ms);
  CHECK(!forever.done());
  forever.cancel();
  CHECK_THROWS_AS(rt.block_on([&]() -> weft::task<> { co_await forever; }()),
                  weft::cancelled_error);
}

TEST_CASE("rate_limiter: a vanishingly small rate saturates its interval instead of overflowing") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 1});
  weft::rate_limiter limiter(1e-300, 3);  // one call per 1e300 s: the interval saturates
  rt.block_on([&]() -> weft::task<> {
    co_await limiter.acquire();  // the first call of the burst goes at once
    CHECK(limiter.try_acquire());
    CHECK(limiter.try_acquire());
    CHECK_FALSE(limiter.try_acquire());  // the next slot is "never"
  }());
}

TEST_CASE("retry: the last failure propagates when the attempts run out") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<weft::clock::time_point> attempts;
  CHECK_THROWS_WITH_AS(rt.block_on(weft::retry(flaky{10, &attempts}, {.attempts = 3})), "flaky",
                       std::runtime_error);
  CHECK(attempts.size() == 3);
}

TEST_CASE("retry: retry_if stops at a failure it does not accept") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<weft::clock::time_point> attempts;
  weft::retry_policy policy{.attempts = 5};
  policy.retry_if = [](const std::exception_ptr&) { return false; };
  CHECK_THROWS_AS(rt.block_on(weft::retry(flaky{10, &attempts}, policy)), std::runtime_error);
  CHECK(attempts.size() == 1);
}

TEST_CASE("retry: full jitter keeps every delay within the policy's bound") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<weft::clock::time_point> attempts;
  rt.block_on(weft::retry(flaky{4, &attempts}, {.attempts = 5,
                                                .base_delay = 100ms,
                                                .max_delay = 1s,
                                                .jitter = weft::retry_policy::jitter_type::full}));
  REQUIRE(attempts.size() == 5);
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    CHECK(attempts[i] - attempts[i - 1] <= std::chrono::milliseconds(100 << (i - 1)));
  }
}

TEST_CASE("retry: a cancellation during the backoff sleep stops retrying at once") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  std::vector<weft::clock::time_point> attempts;
  const bool cancelled = rt.block_on([&]() -> weft::task<bool> {
    auto retrying =
        weft::spawn(weft::retry(flaky{10, &attempts}, {.attempts = 10, .base_delay = 1h}));
    co_await weft::sleep(20ms);  // the first attempt failed; it sleeps for an hour now
    retrying.cancel();
    try {
      co_await retrying;
    } catch (const weft::cancelled_error&) {
      co_return true;
    }
    co_return false;
  }());
  CHECK(cancelled);
  CHECK(attempts.size() == 1);
}

TEST_CASE("map_bounded: never more than limit calls in flight and results in input order") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<int> items(50);
  for (int i = 0; i < 50; ++i)
    items[i] = i;
  std::atomic<int> in_flight{0};
  std::atomic<int> most{0};
  const auto results = rt.block_on([&]() -> weft::task<std::vector<int>> {
    co_return co_await weft::map_bounded(items, 4, [&](const int& item) -> weft::task<int> {
      const int now = ++in_flight;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      co_await weft::sleep(std::chrono::milliseconds(1 + (item * 7) % 13));
      --in_flight;
      co_return item * 2;
    });
  }());
  REQUIRE(results.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i)
    CHECK(results[i] == items[i] * 2);
  CHECK(most.load() == 4);
}

TEST_CASE("map_bounded: the first failure cancels the calls in flight and is rethrown") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<int> items{1, 2, 3, 4, 5, 6};
  std::atomic<int> cancelled{0};
  CHECK_THROWS_WITH_AS(rt.block_on(weft::map_bounded(items, 3,
                                                     [&](const int& item) -> weft::task<int> {
                                                       if (item == 2)
                                                         throw std::runtime_error("item 2 failed");
                                                       bool was_cancelled = false;
                                                       try {
                                                         co_await weft::sleep(1h);
                                                       } catch (const weft::cancelled_error&) {
                                                         was_cancelled = true;
                                                       }
                                                       if (was_cancelled) {
                                                         ++cancelled;
                                                         throw weft::cancelled_error();
                                                       }
                                                       co_return item;
                                                     })),
                       "item 2 failed", std::runtime_error);
  CHECK(cancelled.load() == 2);  // the two other lanes in flight
}

TEST_CASE("process_in_batches: a batch finishes before the next starts") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  std::vector<int> items{1, 2, 3, 4, 5, 6, 7};
  std::mutex mutex;
  std::vector<std::pair<int, std::chrono::milliseconds>> started;
  const auto results = rt.block_on([&]() -> weft::task<std::vector<int>> {
    const auto start = weft::now();
    co_return co_await weft::process_in_batches(
        items, 3,
        [&](const int& item) -> weft::task<int> {
          {
            std::lock_guard lock(mutex);
            started.emplace_back(item, since(start));
          }
          co_await weft::sleep(100ms);
          co_return -item;
        },
        10ms);
  }());
  CHECK(results == std::vector<int>{-1, -2, -3, -4, -5, -6, -7});
  for (const auto& [item, at] : started) {
    // Batches of 3: items 1-3 at 0, 4-6 after 100 ms + 10 ms pause, 7 after 220 ms.
    const auto batch = (item - 1) / 3;
    CHECK(at == std::chrono::milliseconds(110 * batch));
  }
}

TEST_CASE("rate_limiter: calls beyond the burst are spaced by the rate") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  const auto times = rt.block_on([]() -> weft::task<std::vector<std::chrono::milliseconds>> {
    weft::rate_limiter limiter(10.0, 3);  // 10 per second, bursts of 3
    const auto start = weft::now();
    std::vector<std::chrono::milliseconds> out;
    for (int i = 0; i < 6; ++i) {
      co_await limiter.acquire();
      out.push_back(since(start));
    }
    co_return out;
  }());
  REQUIRE(times.size() == 6);
  CHECK(times[0] == 0ms);
  CHECK(times[1] == 0ms);
  CHECK(times[2] == 0ms);
  CHECK(times[3] == 100ms);
  CHECK(times[4] == 200ms);
  CHECK(times[5] == 300ms);
}

TEST_CASE("rate_limiter: try_acquire refuses once the burst is spent") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  const int granted = rt.block_on([]() -> weft::task<int> {
    weft::rate_limiter limiter(1.0, 2);
    int n = 0;
    for (int i = 0; i < 5; ++i)
      n += limiter.try_acquire() ? 1 : 0;
    co_return n;
  }());
  CHECK(granted == 2);
}

TEST_CASE("timeout_optional: one slow item gives nullopt without delaying the others") {
  weft_test::watchdog dog(10s);
  weft::runtime rt(virtual_clock());
  const auto [results, took] = rt.block_on(
      []() -> weft::task<std::pair<std::vector<std::optional<int>>, std::chrono::milliseconds>> {
        const auto start = weft::now();
        std::vector<weft::task<std::optional<int>>> fetches;
        for (int ms : {10, 5000, 20}) {
          fetches.push_back(weft::timeout_optional(100ms, [](int d) -> weft::task<int> {
            co_await weft::sleep(std::chrono::milliseconds(d));
            co_return d;
          }(ms)));
        }
        auto out = co_await weft::gather(std::move(fetches));
        co_return std::pair{std::move(out), since(start)};
      }());
  REQUIRE(results.size() == 3);
  CHECK(results[0] == 10);
  CHECK_FALSE(results[1].has_value());
  CHECK(results[2] == 20);
  CHECK(took == 100ms);
}
