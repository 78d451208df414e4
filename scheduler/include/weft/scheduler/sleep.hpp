// weft/scheduler/sleep.hpp: weft::sleep, sleep_until and yield_now (asyncio.sleep and sleep(0)).
//
//   co_await weft::sleep(100ms);   // this task waits; the worker runs other tasks meanwhile
//   co_await weft::yield_now();    // let the other ready tasks run first
//
// A sleeping task holds no thread: its timer sits in the poller's timer wheel (1 ms resolution)
// and the task is queued again when it expires. A sleep never ends early; it ends within about a
// millisecond after its deadline on an idle runtime. A zero or negative duration yields.
#pragma once

#include <chrono>
#include <coroutine>

#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>

namespace weft {

using clock = detail::clock;

// The awaiter of yield_now(): requeues the task behind the tasks ready now.
class yield_awaiter {
 public:
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> self) const {
    detail::require_worker("weft::yield_now");
    detail::schedule_yield(self);
  }
  void await_resume() const noexcept {}
};

// The awaiter of sleep() and sleep_until(). Its timer entry lives in the awaiting frame.
class [[nodiscard]] sleep_awaiter {
 public:
  explicit sleep_awaiter(clock::time_point deadline) noexcept : deadline_(deadline) {}
  sleep_awaiter(const sleep_awaiter&) = delete;
  sleep_awaiter& operator=(const sleep_awaiter&) = delete;
  ~sleep_awaiter() {
    if (entry_.linked) detail::disarm_timer(&entry_);
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> self) {
    entry_.waiter = self;
    // A deadline already due arms nothing: behave like yield_now.
    if (!detail::arm_timer(&entry_, deadline_)) detail::schedule_yield(self);
  }
  void await_resume() const noexcept {}

 private:
  clock::time_point deadline_;
  detail::timer_entry entry_;
};

// Suspends the calling task until `deadline`.
inline sleep_awaiter sleep_until(clock::time_point deadline) noexcept {
  return sleep_awaiter(deadline);
}

// Suspends the calling task for `duration`.
template <class Rep, class Period>
sleep_awaiter sleep(std::chrono::duration<Rep, Period> duration) noexcept {
  const clock::time_point now = clock::now();
  // Saturate instead of overflowing: sleep(duration::max()) sleeps "forever".
  const std::chrono::duration<double> room = clock::time_point::max() - now;
  if (std::chrono::duration<double>(duration) >= room) {
    return sleep_awaiter(clock::time_point::max());
  }
  return sleep_awaiter(now + std::chrono::ceil<clock::duration>(duration));
}

inline yield_awaiter yield_now() noexcept { return {}; }

}  // namespace weft
