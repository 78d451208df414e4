// weft/scheduler/current_task.hpp: weft::current_task() and weft::task_ref, Python's
// asyncio.current_task() with Task.cancel(), cancelling() and uncancel() (Python 3.11).
//
//   weft::task_ref self = co_await weft::current_task();
//   try {
//     co_await work();
//   } catch (const weft::cancelled_error&) {
//     if (self.uncancel() > 0) throw;   // someone else's cancellation too: let it through
//   }                                   // ours alone: absorbed, the task goes on
//
// current_task() gives a reference to the spawned task that the awaiting coroutine runs as part of
// (the root of its chain of co_awaits; an empty task_ref if it runs in none, which cannot happen
// under weft::run or runtime::spawn). It does not suspend.
//
// A task counts the cancellation requests it received, as asyncio's Task does:
//   cancel()      requests cancellation (join_handle::cancel() does the same), counted once per
//                 call; requests made before the task sees one are delivered as one cancelled_error
//   cancelling()  the requests standing: made and not taken back by uncancel() (or by a timeout,
//                 which takes back its own)
//   uncancel()    takes one request back and returns the number still standing; taking back the
//                 last one also withdraws a cancellation not delivered yet (Python 3.13's rule),
//                 so a task can absorb a cancellation that it caused itself
// The count is what weft::timeout compares to tell its own expiry from a cancellation from
// outside, so code that absorbs a cancellation should uncancel() it, exactly as in asyncio.
//
// Lifetime: a task_ref does not own the task. Use it while the task runs: from the task itself
// (and the coroutines it awaits), or from code that knows the task has not finished (it awaits
// the task's join_handle later). To cancel a task from outside, keep its join_handle instead.
#pragma once

#include <cstdint>
#include <string_view>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

namespace weft {

class task_ref {
 public:
  task_ref() noexcept = default;
  explicit task_ref(detail::task_header* task) noexcept : task_(task) {}

  [[nodiscard]] explicit operator bool() const noexcept { return task_ != nullptr; }
  friend bool operator==(const task_ref&, const task_ref&) noexcept = default;

  // Requests cancellation (Task.cancel()). Any thread. Requires: *this is not empty.
  void cancel() const noexcept { detail::request_cancel(task_); }
  // The same with a reason (Task.cancel(msg)), as join_handle::cancel(message).
  void cancel(std::string_view message) const { detail::request_cancel(task_, message); }

  // The cancellation requests standing (Task.cancelling()). Requires: *this is not empty.
  [[nodiscard]] std::uint32_t cancelling() const noexcept {
    // Ordering: acquire, as the timeouts read it; a snapshot when other threads cancel.
    return task_->cancel_word().load(std::memory_order_acquire) /
           detail::task_header::cancel_request;
  }

  // Takes one request back and returns those still standing (Task.uncancel()); 0 and no change
  // if none stands. Requires: *this is not empty.
  std::uint32_t uncancel() const noexcept { return detail::withdraw_cancel_request(task_); }

  // The task's name (spawn_named, task_group::spawn_named), or "" (Task.get_name()).
  [[nodiscard]] const char* name() const noexcept {
    return task_->name() != nullptr ? task_->name() : "";
  }

 private:
  detail::task_header* task_ = nullptr;
};

namespace detail {

struct current_task_awaiter {
  current_root_awaiter inner;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return inner.await_suspend(self);
  }
  [[nodiscard]] task_ref await_resume() const noexcept { return task_ref(inner.await_resume()); }
};

}  // namespace detail

// `co_await weft::current_task()`: the running task (asyncio.current_task()). Never suspends.
[[nodiscard]] inline detail::current_task_awaiter current_task() noexcept { return {}; }

}  // namespace weft
