// weft/primitives/wait.hpp: weft::wait, Python's asyncio.wait.
//
//   auto [done, pending] = co_await weft::wait(std::move(handles), weft::first_completed, 5s);
//   for (auto& h : pending) h.cancel();   // wait itself never cancels anything
//
// Waits for spawned tasks until a condition holds: all_completed (every task finished),
// first_completed (any task finished) or first_exception (a task failed, else all finished),
// or until the optional timeout expires. The handles come back split into `done` and `pending`,
// each in the order they were given; no result is taken and no task is cancelled, so the caller
// awaits or cancels them as it likes. wait is a cancellation point: cancelled, it stops waiting
// (cancelling none of the tasks) and throws cancelled_error; the handles are then dropped, which
// detaches the tasks that are still running. An empty collection is an error
// (std::invalid_argument), as asyncio.wait raises ValueError: waiting for nothing is a bug.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

enum class return_when { all_completed, first_completed, first_exception };
inline constexpr return_when all_completed = return_when::all_completed;
inline constexpr return_when first_completed = return_when::first_completed;
inline constexpr return_when first_exception = return_when::first_exception;

template <class T>
struct wait_result {
  std::vector<join_handle<T>> done;
  std::vector<join_handle<T>> pending;
};

namespace detail {

// The waiting machinery of one wait() call, in its coroutine's frame.
//
// Three kinds of event can end the wait: the condition becoming true (on the thread of the task
// that completed it), the timer (poller thread) and a cancellation (any thread). Whether and by
// whom the waiting coroutine is resumed is decided on one atomic word, `phase_`:
//
//   armed    the coroutine has finished suspending (set by await_suspend's last operation)
//   event    some event happened
//   resumed  somebody took the right to resume the coroutine
//
// An event sets `event`, and also `resumed` if `armed` is already set: then it resumes the
// coroutine. await_suspend sets `armed`, and also `resumed` if `event` is already set: then it
// does not suspend. Each side decides with one CAS, so the coroutine is resumed exactly once, and
// await_suspend touches nothing after the CAS that lets others resume it (they may resume it, and
// the frame holding this object may be gone, at once).
//
// When resumed, the coroutine takes back its waiter from every task still running. A task whose
// completer is notifying it right now cannot be taken back, so the coroutine waits until
// `in_flight_` shows that every such notification has returned (a few instructions each).
class wait_state : public cancellable_wait {
 public:
  wait_state(std::vector<task_header*> tasks, return_when when)
      : tasks_(std::move(tasks)), waiters_(tasks_.size()), when_(when) {
    for (std::size_t i = 0; i < waiters_.size(); ++i) {
      waiters_[i].notify = &task_done;
      waiters_[i].state = this;
    }
    timer_.on_fire = &timer_fired;
    timer_.state = this;
  }

  void set_deadline(clock::time_point deadline) { deadline_ = deadline; }

  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    parent_ = self;
    on_cancel = &cancelled;
    if (begin(root_of(self))) return false;  // cancelled already: throw without waiting
    std::size_t already_done = 0;
    bool failed = false;
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      waiters_[i].home = current_runtime_core();
      const join_registration registration = tasks_[i]->register_waiter(&waiters_[i]);
      if (registration == join_registration::registered) continue;
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      if (registration == join_registration::busy) {
        // Another task awaits this one: refuse the whole wait at once (await_resume throws
        // std::logic_error) rather than wait on a word that holds another waiter.
        refused_ = true;
        signal();
        continue;
      }
      ++already_done;
      failed = failed || static_cast<bool>(tasks_[i]->exception());
    }
    if (failed) any_failed_.store(true, std::memory_order_relaxed);
    // Ordering: done_count_ is one RMW chain shared with task_done. acq_rel: the release carries
    // the relaxed any_failed_ store above to a task_done that counts after this; the acquire
    // sees a failure that a task_done stored (release) before its own count. The acquire load of
    // any_failed_ pairs with task_done's release store.
    const std::size_t done =
        done_count_.fetch_add(already_done, std::memory_order_acq_rel) + already_done;
    if (satisfied(done, any_failed_.load(std::memory_order_acquire))) signal();
    if (deadline_ && arm_timer(&timer_, *deadline_) != arm_result::armed) signal();  // due
    // The decisive CAS (see above): nothing below it may touch *this.
    // Ordering: phase_ is the word on which this coroutine and the signallers decide who resumes
    // it; every CAS is acq_rel (acquire on failure), so each decision sees the ones before it
    // and what their threads did first (a count, a timer's firing).
    std::uint32_t phase = phase_.load(std::memory_order_acquire);
    for (;;) {
      const bool event = (phase & event_bit) != 0;
      const std::uint32_t next = phase | armed_bit | (event ? resumed_bit : 0U);
      // Ordering: acq_rel, the decision (above).
      if (phase_.compare_exchange_weak(phase, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return !event;
      }
    }
  }

  void await_resume() {
    disarm_timer(timer_.owner, &timer_);  // also waits for a firing timer to return
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      if (tasks_[i]->unregister_waiter(&waiters_[i])) {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    // Notifications already running against this object (their tasks finished): let them return.
    // Ordering: acquire pairs with task_done's release decrement, its last access to *this.
    while (in_flight_.load(std::memory_order_acquire) != 0)
      std::this_thread::yield();
    finish();  // throws cancelled_error if the wait was cancelled
    if (refused_) {
      throw std::logic_error(
          "weft::wait: a task passed to wait is awaited by another task at once; a task can be "
          "awaited by one task at a time");
    }
  }

 private:
  static constexpr std::uint32_t armed_bit = 1;
  static constexpr std::uint32_t event_bit = 2;
  static constexpr std::uint32_t resumed_bit = 4;

  struct task_waiter : join_waiter {
    wait_state* state = nullptr;
  };
  struct wait_timer : callback_timer_entry {
    wait_state* state = nullptr;
  };

  [[nodiscard]] bool satisfied(std::size_t done, bool failed) const noexcept {
    switch (when_) {
      case return_when::first_completed:
        return done > 0;
      case return_when::first_exception:
        return failed || done == tasks_.size();
      case return_when::all_completed:
        return done == tasks_.size();
    }
    return false;
  }

  // Records an event; true if the caller must resume the coroutine (it was armed, nobody else
  // resumed it). Before `armed`, await_suspend sees the event and does not suspend.
  bool signal() noexcept {
    // Ordering: acquire load and acq_rel CAS on phase_, as in await_suspend (the decision word).
    std::uint32_t phase = phase_.load(std::memory_order_acquire);
    for (;;) {
      if ((phase & resumed_bit) != 0) return false;
      const bool armed = (phase & armed_bit) != 0;
      const std::uint32_t next = phase | event_bit | (armed ? resumed_bit : 0U);
      if (phase_.compare_exchange_weak(phase, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return armed;
      }
    }
  }

  static std::coroutine_handle<> task_done(join_waiter* waiter, task_header* task) noexcept {
    wait_state* self = static_cast<task_waiter*>(waiter)->state;
    // Ordering: the release store of any_failed_ pairs with the acquire loads that follow a
    // count; the acq_rel count is the chain described in await_suspend, so whichever counter
    // sees the last count also sees every failure stored before an earlier count.
    if (task->exception()) self->any_failed_.store(true, std::memory_order_release);
    const std::size_t done = self->done_count_.fetch_add(1, std::memory_order_acq_rel) + 1;
    std::coroutine_handle<> next = std::noop_coroutine();
    if (self->satisfied(done, self->any_failed_.load(std::memory_order_acquire)) &&
        self->signal()) {
      next = self->parent_;
    }
    // Ordering: release; the last access to *self. The resumed coroutine's acquire load of
    // in_flight_ orders everything above before it destroys this object.
    self->in_flight_.fetch_sub(1, std::memory_order_release);
    return next;
  }

  static void timer_fired(timer_entry* entry) noexcept {
    wait_state* self = static_cast<wait_timer*>(entry)->state;
    // The timer entry is disarmed (waiting for this call to return) before the object dies.
    if (self->signal()) wake(self->timer_.owner, self->parent_);
  }

  static void cancelled(cancel_hook* hook) noexcept {
    auto* self = static_cast<wait_state*>(static_cast<cancellable_wait*>(hook));
    // The hook is withdrawn (waiting for this call to return) before the object dies.
    if (self->signal()) wake(runtime_of(self->root()), self->parent_);
  }

  std::vector<task_header*> tasks_;
  std::vector<task_waiter> waiters_;
  const return_when when_;
  std::optional<clock::time_point> deadline_;
  std::coroutine_handle<> parent_;
  wait_timer timer_;
  std::atomic<std::size_t> done_count_{0};
  std::atomic<bool> any_failed_{false};
  bool refused_ = false;  // written and read by the waiting coroutine only
  std::atomic<std::uint32_t> phase_{0};
  std::atomic<std::size_t> in_flight_{0};
};

}  // namespace detail

// Waits for `handles` as `when` says, or until `timeout` expires (if given). The timeout saturates
// (detail/duration.hpp): max() never expires; a zero or negative one returns at once with what is
// done already.
template <class T>
task<wait_result<T>> wait(std::vector<join_handle<T>> handles,
                          return_when when = return_when::all_completed,
                          std::optional<clock::duration> timeout = std::nullopt) {
  if (handles.empty()) throw std::invalid_argument("weft::wait: no tasks to wait for");
  std::vector<detail::task_header*> headers;
  headers.reserve(handles.size());
  for (auto& handle : handles) {
    if (!handle.valid()) throw std::invalid_argument("weft::wait: an empty join_handle");
    headers.push_back(handle.header());
  }
  {
    detail::wait_state state(std::move(headers), when);
    if (timeout) state.set_deadline(detail::saturating_add(weft::now(), *timeout));
    co_await state;
  }
  wait_result<T> result;
  for (auto& handle : handles) {
    (handle.done() ? result.done : result.pending).push_back(std::move(handle));
  }
  co_return result;
}

// The same with a timeout in any duration type (hours::max(), duration<double>): converted with
// saturation, where the implicit conversion to clock::duration would overflow.
template <class T, class Rep, class Period>
task<wait_result<T>> wait(std::vector<join_handle<T>> handles, return_when when,
                          std::chrono::duration<Rep, Period> timeout) {
  return wait(std::move(handles), when,
              std::optional<clock::duration>(detail::saturating_ceil_ns(timeout)));
}

}  // namespace weft
