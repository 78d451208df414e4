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

#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class rate_limiter {
 public:
  // `per_second` > 0 calls per second on average; `burst` >= 1 calls may go at once.
  explicit rate_limiter(double per_second, unsigned burst = 1)
      : interval_(std::chrono::duration_cast<clock::duration>(
            std::chrono::duration<double>(1.0 / check_rate(per_second)))),
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
      allowed = next_ - tolerance_;
      next_ += interval_;
    }
    if (allowed > start) co_await weft::sleep_until(allowed);
  }

  // Takes a slot only if one is free now (no waiting); true if it did.
  bool try_acquire() {
    const clock::time_point start = weft::now();
    std::lock_guard lock(mutex_);
    const clock::time_point next = next_ < start ? start : next_;
    if (next - tolerance_ > start) return false;
    next_ = next + interval_;
    return true;
  }

 private:
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
