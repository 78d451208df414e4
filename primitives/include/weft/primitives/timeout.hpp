// weft/primitives/timeout.hpp: weft::timeout, timeout_at and wait_for (asyncio.timeout and
// asyncio.wait_for).
//
//   auto page = co_await weft::timeout(5s, fetch(url));          // a task
//   auto value = co_await weft::wait_for(std::move(handle), 5s);  // or a spawned task's handle
//
// On expiry the inner work is cancelled, its cleanup runs (including co_await inside cleanup),
// and only then does the timeout throw weft::timeout_error. Only the cancellation that the
// timeout caused becomes timeout_error: a cancellation of the task from outside stays a
// cancelled_error. On success the timer is disarmed before the result is returned
// (runtime_stats::timers shows none left behind). Timeouts nest; the innermost expired one
// reports.
//
// For a join_handle, expiry cancels that task (as awaiting a handle does when cancelled) and
// waits for it to finish; the handle keeps its result.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

// The timer of one timeout, in the timeout coroutine's frame: on expiry (on the poller thread) it
// records that it fired and requests cancellation of the task.
class timeout_timer {
 public:
  explicit timeout_timer(task_header* root) noexcept : root_(root) { entry_.on_fire = &fire; }
  timeout_timer(const timeout_timer&) = delete;
  timeout_timer& operator=(const timeout_timer&) = delete;
  ~timeout_timer() { disarm(); }

  void arm(clock::time_point deadline) {
    if (arm_timer(&entry_, deadline) != arm_result::armed) fire(&entry_);  // due already
  }
  // Afterwards the timer can no longer fire (an expiry in progress has finished).
  void disarm() noexcept { disarm_timer(entry_.owner, &entry_); }
  [[nodiscard]] bool fired() const noexcept { return fired_.load(std::memory_order_acquire); }

 private:
  static void fire(timer_entry* entry) noexcept {
    // entry_ is the first member: the entry's address is the timer's.
    auto* self = reinterpret_cast<timeout_timer*>(entry);
    self->fired_.store(true, std::memory_order_release);
    request_cancel(self->root_);
  }

  timer_entry entry_;  // first: see fire()
  task_header* root_;
  std::atomic<bool> fired_{false};
};

template <class A>
struct timeout_result;
template <class T>
struct timeout_result<task<T>> {
  using type = T;
};
template <class T>
struct timeout_result<join_handle<T>> {
  using type = T;
};

}  // namespace detail

// Awaits `work` (a task, or a join_handle moved in) and throws timeout_error if it is not done by
// `deadline`.
template <class A>
task<typename detail::timeout_result<std::remove_cvref_t<A>>::type> timeout_at(
    clock::time_point deadline, A work) {
  using result_type = typename detail::timeout_result<std::remove_cvref_t<A>>::type;
  detail::task_header* root = co_await detail::current_root_awaiter{};
  // Cancellation requests standing before this timeout began (asyncio compares with the count at
  // entry too): an expiry is reported as timeout_error unless a request *newer* than ours stands.
  const std::uint32_t requests_before =
      root->cancel_state.load(std::memory_order_acquire) / detail::task_header::cancel_request;
  detail::timeout_timer timer(root);
  timer.arm(deadline);
  try {
    if constexpr (std::is_void_v<result_type>) {
      co_await std::move(work);
      timer.disarm();
      // Fired, but the work finished before a cancellation point saw it: take the request back.
      if (timer.fired()) detail::withdraw_cancel_request(root);
    } else {
      result_type value = co_await std::move(work);
      timer.disarm();
      if (timer.fired()) detail::withdraw_cancel_request(root);
      co_return static_cast<result_type&&>(value);
    }
  } catch (const cancelled_error&) {
    timer.disarm();
    // Ours, and no other cancellation request stands: report the timeout instead.
    if (timer.fired() && detail::withdraw_cancel_request(root) <= requests_before) {
      throw timeout_error();
    }
    throw;
  }
}

// Awaits `work` and throws timeout_error if it takes longer than `duration`.
template <class A, class Rep, class Period>
auto timeout(std::chrono::duration<Rep, Period> duration, A work) {
  return timeout_at(weft::now() + std::chrono::ceil<clock::duration>(duration), std::move(work));
}

// asyncio.wait_for's argument order.
template <class A, class Rep, class Period>
auto wait_for(A work, std::chrono::duration<Rep, Period> duration) {
  return timeout(duration, std::move(work));
}

// The seed's "timeout for multiple operations": the work's value, or std::nullopt if it did not
// finish within `duration` (the work is cancelled and its cleanup has run by then).
//
//   std::vector<weft::task<std::optional<page>>> fetches;
//   for (auto& url : urls) fetches.push_back(weft::timeout_optional(5s, fetch(url)));
//   auto pages = co_await weft::gather(std::move(fetches));   // one slow url delays nobody
template <class A, class Rep, class Period>
task<std::optional<typename detail::timeout_result<std::remove_cvref_t<A>>::type>> timeout_optional(
    std::chrono::duration<Rep, Period> duration, A work) {
  try {
    co_return co_await timeout(duration, std::move(work));
  } catch (const timeout_error&) {
  }
  co_return std::nullopt;
}

}  // namespace weft
