// examples/common_patterns.cpp: retry with exponential backoff, batch processing, per-item timeouts
// and rate limiting. Docs: docs/patterns/common-patterns.md.
//
// The seed guide's "Common Patterns": retry with exponential backoff, batch processing, and
// timeouts for multiple operations, plus a token-bucket rate limiter. Every request is simulated
// with weft::sleep.
//
//   Python                                          weft
//   retry_with_backoff(fetch, max_attempts=3,       co_await weft::retry(fetch, {.attempts = 3,
//                      base_delay=0.1)                  .base_delay = 100ms})
//   process_in_batches(items, 5, process)           co_await weft::process_in_batches(items, 5,
//                                                       process)   (or weft::map_bounded)
//   gather(*[with_timeout(u) for u in urls])        gather of weft::timeout_optional(5s, fetch(u))

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::common_patterns {

using namespace std::chrono_literals;

namespace {

// Retry: an endpoint that fails twice, then answers. The backoff sleeps 100 ms, then 200 ms.
weft::task<bool> retry_with_backoff() {
  int calls = 0;
  weft::retry_policy policy;
  policy.attempts = 3;
  policy.base_delay = 100ms;
  policy.max_delay = 1s;
  const stopwatch watch;
  const std::string answer = co_await weft::retry(
      [&]() -> weft::task<std::string> {
        ++calls;
        co_await weft::sleep(10ms);  // the request itself
        if (calls < 3) {
          std::printf("  attempt %d failed: service unavailable\n", calls);
          throw std::runtime_error("503 service unavailable");
        }
        co_return "{\"status\": \"ok\"}";
      },
      policy);
  const double took = watch.seconds();
  std::printf("  attempt %d answered %s after %.2f s (3 x 10 ms requests, 100 + 200 ms backoff)\n",
              calls, answer.c_str(), took);
  co_return check(calls == 3, "three attempts") && check(took >= 0.33 && took < 1.2, "backoff");
}

// Batch processing: 12 items, 5 at a time, each item 100 ms.
weft::task<bool> batches() {
  std::vector<int> items;
  for (int i = 1; i <= 12; ++i)
    items.push_back(i);
  auto process = [](const int& item) -> weft::task<int> {
    co_await weft::sleep(100ms);
    co_return item* item;
  };
  stopwatch watch;
  const auto in_batches = co_await weft::process_in_batches(items, 5, process);
  const double batch_time = watch.seconds();
  watch = stopwatch();
  const auto windowed = co_await weft::map_bounded(items, 5, process);
  const double window_time = watch.seconds();
  std::printf("  12 items, 5 at a time: batches took %.2f s (3 rounds), a sliding window %.2f s\n",
              batch_time, window_time);
  bool ok = check(in_batches == windowed, "same results in input order");
  ok = check(in_batches.front() == 1 && in_batches.back() == 144, "the squares") && ok;
  co_return ok&& check(took_about(batch_time, 0.3), "batches take 3 rounds");
}

// Timeouts for multiple operations: one slow URL returns nullopt; the others are not delayed.
weft::task<bool> individual_timeouts() {
  struct request {
    std::string url;
    std::chrono::milliseconds latency;
  };
  const std::vector<request> requests{{"https://fast.example.com", 100ms},
                                      {"https://slow.example.com", 5s},
                                      {"https://ok.example.com", 200ms}};
  std::vector<weft::task<std::optional<std::string>>> fetches;
  for (const request& r : requests) {
    fetches.push_back(weft::timeout_optional(500ms, [](request req) -> weft::task<std::string> {
      co_await weft::sleep(req.latency);
      co_return "page of " + req.url;
    }(r)));
  }
  const stopwatch watch;
  const auto pages = co_await weft::gather(std::move(fetches));
  const double took = watch.seconds();
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::printf("  %-26s %s\n", requests[i].url.c_str(),
                pages[i] ? pages[i]->c_str() : "timed out (None)");
  }
  std::printf("  3 fetches with a 0.5 s timeout each took %.2f s\n", took);
  co_return check(pages[0].has_value() && !pages[1].has_value() && pages[2].has_value(),
                  "only the slow one timed out") &&
      check(took_about(took, 0.5), "bounded by the timeout");
}

// Rate limiting: 10 calls at 20 per second with bursts of 5.
weft::task<bool> rate_limited() {
  weft::rate_limiter limiter(20.0, 5);
  const stopwatch watch;
  for (int i = 0; i < 10; ++i)
    co_await limiter.acquire();
  const double took = watch.seconds();
  std::printf("  10 calls at 20/s with bursts of 5 took %.2f s (5 at once, then one per 50 ms)\n",
              took);
  co_return check(took >= 0.25 && took < 1.0, "five spaced calls after the burst");
}

}  // namespace

int run() {
  return weft::run([]() -> weft::task<int> {
    int failed = 0;
    std::printf("retry with exponential backoff:\n");
    failed += (co_await retry_with_backoff()) ? 0 : 1;
    std::printf("batch processing:\n");
    failed += (co_await batches()) ? 0 : 1;
    std::printf("timeouts for multiple operations:\n");
    failed += (co_await individual_timeouts()) ? 0 : 1;
    std::printf("rate limiting:\n");
    failed += (co_await rate_limited()) ? 0 : 1;
    co_return failed;
  }());
}

}  // namespace examples::common_patterns

// The program `common_patterns`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::common_patterns::run(); }
#endif
