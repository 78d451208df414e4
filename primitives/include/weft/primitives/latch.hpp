// weft/primitives/latch.hpp: weft::latch, a single-use countdown that tasks can wait for (like
// std::latch, for coroutines).
//
//   weft::latch ready(3);                  // three workers must check in
//   // each worker task                    // the coordinator task
//   ready.count_down();                    co_await ready.wait();
//
// count_down() may be called from any thread, a foreign one included; when the count reaches zero,
// every waiter is woken and later waits return at once. Counting below zero is a logic error
// (std::logic_error, the count is unchanged). wait() is a cancellation point with weft::event's
// semantics (it is an event underneath). Costs: count_down is one atomic RMW; the last one sets the
// event; waiting on an open latch is one load.
#pragma once

#include <atomic>
#include <cstddef>
#include <stdexcept>

#include <weft/primitives/event.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

class latch {
 public:
  explicit latch(std::ptrdiff_t count) : count_(count), open_(count <= 0) {
    if (count < 0) throw std::invalid_argument("weft::latch: a negative count");
  }
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;

  // Decrements the count by `n`; at zero, opens the latch for every waiter.
  WEFT_API void count_down(std::ptrdiff_t n = 1);

  // True once the count reached zero.
  [[nodiscard]] bool try_wait() const noexcept { return open_.is_set(); }

  // Waits until the count reaches zero.
  [[nodiscard]] event::wait_awaiter wait() noexcept { return open_.wait(); }

  // count_down(n), then wait.
  [[nodiscard]] event::wait_awaiter arrive_and_wait(std::ptrdiff_t n = 1) {
    count_down(n);
    return wait();
  }

 private:
  std::atomic<std::ptrdiff_t> count_;
  event open_;
};

}  // namespace weft
