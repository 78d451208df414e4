// weft/primitives/rate_limiter.hpp: weft::rate_limiter, a token bucket, for "at most N requests
// per second" (what users usually mean when they reach for a semaphore to rate-limit).
//
//   weft::rate_limiter limiter(10.0, 5);       // 10 per second on average, bursts of up to 5
//   co_await limiter.acquire();                // waits for its turn
//   co_await fetch(url);
//
// Callers are served in the order they call acquire(): each call reserves the next free slot of
// the schedule (the generic cell rate algorithm, a token bucket without a timer) and sleeps until
// it, so nothing polls and the bookkeeping is one short critical section. Up to `burst` calls
// proceed at once after a quiet period. A caller cancelled while waiting gives up its slot's wait
// but not the slot: the rate stays an upper bound, and the capacity it reserved is lost (at most
// one interval per cancelled caller). Uses the runtime's clock (virtual time works).
#pragma once

#include <chrono>
#include <mutex>
#include <stdexcept>

#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class rate_limiter {
 public:
  // `per_second` > 0 calls per second on average; `burst` >= 1 calls may go at once.
  explicit rate_limiter(double per_second, unsigned burst = 1)
      : interval_(interval_of(check_rate(per_second), burst)),
        tolerance_(interval_ * (burst == 0 ? 0 : burst - 1)) {
    if (burst == 0) throw std::invalid_argument("weft::rate_limiter: burst must be at least 1");
  }

  // Waits until this caller may proceed. A cancellation point.
  task<void> acquire() {
    const clock::time_point start = weft::now();
    clock::time_point allowed;
    {
      std::lock_guard lock(mutex_);
      // Invariant: next_ is the theoretical time of the next conforming call; a call may go
      // `tolerance_` ahead of it (the burst).
      if (next_ < start) next_ = start;
      // next_ >= start > 0 and 0 <= tolerance_, so the difference cannot overflow; the sum can,
      // after many calls at a rate so small that its interval was clamped (interval_of).
      allowed = next_ - tolerance_;
      next_ = detail::saturating_add(next_, interval_);
    }
    if (allowed > start) co_await weft::sleep_until(allowed);
  }

  // Takes a slot only if one is free now (no waiting); true if it did.
  bool try_acquire() {
    const clock::time_point start = weft::now();
    std::lock_guard lock(mutex_);
    const clock::time_point next = next_ < start ? start : next_;
    if (next - tolerance_ > start) return false;
    next_ = detail::saturating_add(next, interval_);
    return true;
  }

 private:
  // 1 / per_second, rounded up, and at most max() / (2 * burst) (about 146 years / burst): a rate
  // so small is "never" anyway, and the clamp keeps the arithmetic below finite. Without it the
  // interval (1e300 s for a rate of 1e-300) saturated, the tolerance too, and next_ - tolerance_
  // = max() - max() let every call through. With it, tolerance_ < max() / 2, so a next_ that
  // saturated at time_point::max() stays refused.
  static clock::duration interval_of(double per_second, unsigned burst) noexcept {
    const clock::duration exact =
        detail::saturating_ceil_ns(std::chrono::duration<double>(1.0 / per_second));
    const clock::duration cap =
        clock::duration::max() / (2 * static_cast<clock::rep>(burst == 0 ? 1 : burst));
    return exact < cap ? exact : cap;
  }
  static double check_rate(double per_second) {
    if (!(per_second > 0)) throw std::invalid_argument("weft::rate_limiter: rate must be > 0");
    return per_second;
  }

  const clock::duration interval_;
  const clock::duration tolerance_;
  std::mutex mutex_;
  clock::time_point next_{};
};

}  // namespace weft
