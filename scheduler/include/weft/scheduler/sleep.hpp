// weft/scheduler/sleep.hpp: weft::sleep, sleep_until and yield_now (asyncio.sleep and sleep(0)).
//
//   co_await weft::sleep(100ms);   // this task waits; the worker runs other tasks meanwhile
//   co_await weft::yield_now();    // let the other ready tasks run first
//
// A sleeping task holds no thread: its timer sits in the poller's timer wheel (1 ms resolution)
// and the task is queued again when it expires. A sleep never ends early; it ends within about a
// millisecond after its deadline on an idle runtime. A zero or negative duration (or a deadline
// that has passed) yields. Durations saturate instead of overflowing (detail/duration.hpp):
// sleep(hours::max()) sleeps forever, sleep(hours::min()) yields, and a NaN duration<double>
// counts as zero. Both are cancellation points: a cancelled task leaves them with
// weft::cancelled_error.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

using clock = detail::clock;

// The current time of the runtime whose task is calling: clock::now(), or the virtual clock of a
// runtime created with runtime_options::virtual_time. Outside a runtime, clock::now().
inline clock::time_point now() noexcept { return detail::runtime_now(); }

// The awaiter of yield_now(): requeues the task behind the tasks ready now. A cancellation point.
class yield_awaiter {
 public:
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    detail::require_worker("weft::yield_now");
    root_ = detail::root_of(self);
    if (root_ != nullptr && root_->take_pending_cancel()) {
      cancelled_ = true;
      return false;
    }
    detail::schedule_yield(self);
    return true;
  }
  void await_resume() const {
    if (cancelled_ || (root_ != nullptr && root_->take_pending_cancel())) {
      throw detail::cancellation_of(root_);
    }
  }

 private:
  detail::task_header* root_ = nullptr;
  bool cancelled_ = false;
};

// The awaiter of sleep() and sleep_until(). Its timer entry lives in the awaiting frame. A
// cancellation point: cancelling the task disarms the timer and resumes it with cancelled_error.
class [[nodiscard]] sleep_awaiter : private detail::cancellable_wait {
 public:
  // The requested time waits in the entry's `deadline` field until arming converts it to the
  // wheel's ticks (8 bytes less per sleeping task than a member of its own; nothing reads the
  // field of an entry that is not armed).
  explicit sleep_awaiter(clock::time_point deadline) noexcept {
    entry_.deadline = static_cast<std::uint64_t>(deadline.time_since_epoch().count());
  }
  sleep_awaiter(const sleep_awaiter&) = delete;
  sleep_awaiter& operator=(const sleep_awaiter&) = delete;
  ~sleep_awaiter() {
    if (entry_.linked) detail::disarm_timer(entry_.owner, &entry_);
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    detail::require_worker("weft::sleep");
    on_cancel = &cancel_sleep;
    if (begin(detail::root_of(self), detail::wait_kind::sleep)) return false;  // cancelled already
    entry_.waiter = self;
    // Nothing here may touch *this once the timer is armed: it can fire and resume the task on
    // another worker at once. A cancel racing with arming is settled under the wheel's lock:
    // either it disarms the armed entry, or it marks the entry so that arming refuses.
    const clock::time_point deadline{clock::duration(static_cast<clock::rep>(entry_.deadline))};
    switch (detail::arm_timer(&entry_, deadline)) {
      case detail::arm_result::armed:
        return true;
      case detail::arm_result::due:
        detail::schedule_yield(self);  // behave like yield_now
        return true;
      case detail::arm_result::cancelled:
        return false;  // await_resume throws cancelled_error
    }
    return true;
  }
  void await_resume() { finish(); }

 private:
  static void cancel_sleep(detail::cancel_hook* hook) noexcept {
    auto* self = static_cast<sleep_awaiter*>(static_cast<detail::cancellable_wait*>(hook));
    // The runtime comes from the task (published with the hook), not from the entry, which the
    // awaiting thread may be arming right now.
    detail::runtime_core* rt = self->root()->runtime();
    // entry_.waiter was written before the entry was armed, under the wheel's lock, and
    // cancel_timer reports true only for an armed entry (it takes the same lock).
    if (detail::cancel_timer(rt, &self->entry_)) detail::wake(rt, self->entry_.waiter);
  }

  detail::timer_entry entry_;
};

// Suspends the calling task until `deadline`; a deadline that has passed yields.
inline sleep_awaiter sleep_until(clock::time_point deadline) noexcept {
  return sleep_awaiter(deadline);
}

// The same for a time point of the clock in other units (time_point<clock, seconds>, say): rounded
// up and saturated, where the implicit conversion would overflow.
template <class Duration>
sleep_awaiter sleep_until(std::chrono::time_point<clock, Duration> deadline) noexcept {
  return sleep_awaiter(clock::time_point(detail::saturating_ceil_ns(deadline.time_since_epoch())));
}

// Suspends the calling task for `duration`: max() sleeps forever, zero, negative or NaN yields.
template <class Rep, class Period>
sleep_awaiter sleep(std::chrono::duration<Rep, Period> duration) noexcept {
  return sleep_awaiter(detail::saturating_deadline(weft::now(), duration));
}

inline yield_awaiter yield_now() noexcept { return {}; }

}  // namespace weft
