// weft/primitives/retry.hpp: weft::retry, the seed guide's "retry with exponential backoff".
//
//   auto page = co_await weft::retry([&] { return fetch(url); },
//                                    {.attempts = 5, .base_delay = 100ms, .max_delay = 5s});
//
// Calls `make()` (which returns a weft::task) until it succeeds or the attempts run out; between
// attempts it sleeps base_delay * multiplier^(attempt - 1), capped at max_delay, optionally with
// full jitter (a uniform random delay in [0, that]). `retry_if` decides which failures are worth
// another attempt (default: every exception); any other failure, and the last one, propagates.
// A cancellation is never retried: cancelled during an attempt or during a backoff sleep, retry
// stops at once with cancelled_error. Sleeps use the runtime's clock, so retries run instantly on
// a virtual-time runtime (runtime_options::virtual_time).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct retry_policy {
  enum class jitter_type { none, full };

  int attempts = 3;                            // total calls, including the first
  std::chrono::milliseconds base_delay{1000};  // sleep before the second attempt
  std::chrono::milliseconds max_delay{60000};  // cap of any single sleep
  double multiplier = 2.0;                     // growth per attempt
  jitter_type jitter = jitter_type::none;
  std::function<bool(const std::exception_ptr&)> retry_if;  // empty: retry every exception

  // The sleep before attempt `attempt + 1` (attempt counts from 1), before jitter. Computed in
  // double and converted back with saturation (detail/duration.hpp), so no policy overflows: a
  // max_delay of milliseconds::max() (which double rounds up to 2^63) or a huge multiplier gives
  // at most max_delay; a NaN (multiplier NaN, or 0 * inf) gives no delay; a negative one yields.
  [[nodiscard]] std::chrono::milliseconds delay_after(int attempt) const {
    double delay = static_cast<double>(base_delay.count());
    for (int i = 1; i < attempt && delay < static_cast<double>(max_delay.count()); ++i) {
      delay *= multiplier;
    }
    const double capped = std::min(delay, static_cast<double>(max_delay.count()));
    // Truncated (not rounded up) as before; the saturating conversion rounds up, so floor first.
    const auto delay_ms = detail::saturating_ceil<std::chrono::milliseconds>(
        std::chrono::duration<double, std::milli>(std::isnan(capped) ? 0.0 : std::trunc(capped)));
    return std::min(delay_ms, max_delay);
  }
};

// Retries `make()` as `policy` says; returns the first successful result.
template <class Make>
auto retry(Make make, retry_policy policy = {}) -> std::invoke_result_t<Make&> {
  using task_type = std::invoke_result_t<Make&>;
  using value_type = typename task_type::value_type;
  if (policy.attempts < 1) throw std::invalid_argument("weft::retry: attempts must be >= 1");
  std::minstd_rand random(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    std::exception_ptr failure;
    try {
      if constexpr (std::is_void_v<value_type>) {
        co_await make();
        co_return;
      } else {
        co_return co_await make();
      }
    } catch (const cancelled_error&) {
      throw;  // never retried
    } catch (...) {
      failure = std::current_exception();
    }
    if (attempt >= policy.attempts || (policy.retry_if && !policy.retry_if(failure))) {
      std::rethrow_exception(failure);
    }
    auto delay = policy.delay_after(attempt);
    if (policy.jitter == retry_policy::jitter_type::full && delay.count() > 0) {
      delay = std::chrono::milliseconds(
          std::uniform_int_distribution<long long>(0, delay.count())(random));
    }
    co_await weft::sleep(delay);  // a cancellation point: cancelled here, retry stops
  }
}

}  // namespace weft
