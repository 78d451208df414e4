// weft/primitives/timeout.hpp: weft::timeout, timeout_at and wait_for (asyncio.timeout and
// asyncio.wait_for), and weft::timeout_scope, a timeout whose deadline the work can move
// (asyncio.Timeout's reschedule, when, expired, and timeout(None)).
//
//   auto page = co_await weft::timeout(5s, fetch(url));          // a task
//   auto value = co_await weft::wait_for(std::move(handle), 5s);  // or a spawned task's handle
//   weft::timeout_scope idle(std::nullopt);                       // no deadline yet
//   co_await weft::timeout(idle, serve(conn, idle));              // serve calls idle.reschedule
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
//
// timeout, timeout_at and wait_for return an awaitable (weft::timeout_awaitable), not a task: the
// work is awaited inline, without a coroutine frame of the timeout's own. spawn, gather and
// task_group::spawn take it as they take a task, and it converts to a weft::task<T> where one is
// needed (a vector of tasks, a task-returning function). timeout(d, ...) and wait_for start their
// clock when the awaiting (or the spawned task) begins, not when the awaitable is made, as
// asyncio.wait_for does; timeout_at's deadline is fixed.
//
// Cost: the timer is armed lazily. A timeout whose work finishes before reaching a cancellation
// point never touches the timer wheel; what remains is one clock read (timeout; not timeout_at;
// for a duration of 1 s or more a coarse one, 7 ns against 55 ns: a bound of the start, narrowed
// to the exact deadline when the timer is armed) and a few stores in the task's header. The first
// cancellation point inside the work arms the timer (task_header::timeout_to_arm): a deadline that
// has passed by then fires at once, so the work is cancelled there, exactly as if the timer had
// fired on time while it ran.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

// When a timeout expires: at a fixed time (timeout_at, timeout_scope), a duration after the
// awaiting begins (timeout, wait_for; asyncio.wait_for also starts its clock when it starts
// running, so a timeout made now and awaited later, say by gather or map_bounded, gets its whole
// duration), or never (disabled: timeout(std::nullopt, ...), timeout_scope(std::nullopt)).
struct timeout_limit {
  clock::time_point at{};
  clock::duration after{};
  bool relative = false;
  // wait_for: a duration of zero or less expires before the work starts (the work never runs).
  bool expire_before_start = false;
  // No deadline (asyncio.timeout(None)); a timeout_scope can set one later (reschedule).
  bool disabled = false;

  [[nodiscard]] bool expired_before_start() const noexcept {
    return expire_before_start && relative && after <= clock::duration::zero();
  }

  // Saturated (detail/duration.hpp): after = max() never expires.
  [[nodiscard]] clock::time_point deadline() const noexcept {
    return relative ? saturating_add(weft::now(), after) : at;
  }
};

// Relative timeouts at least this long read a coarse clock at their start (timeout_start_bound):
// its margin (four kernel ticks, at most 16 ms) is then a small part of the duration.
inline constexpr clock::duration coarse_start_from = std::chrono::seconds(1);

// The part of a timeout awaiter that does not depend on the work: the lazily armed timer, its
// registration in the task's header, what the work's end means, and moving the deadline
// (timeout_scope).
//
// The timer is in one of four states, all read and written by the task alone (reschedule is
// called from inside the work, on the task's thread, like the lazy arming):
//   lazy       registered as unarmed_timeout_of(timer_.root); the next cancellation point arms it
//   armed      in the timer wheel (timer_.armed)
//   idle       neither: disabled, or taken out of the wheel by reschedule to a disabled deadline
//   fired      timer_.fired; the expiry requested cancellation of the task (final)
class timeout_guard {
 public:
  explicit timeout_guard(timeout_limit limit) noexcept : limit_(limit) {}
  // Movable until it is awaited (gather and spawn take their children by value); once entered,
  // the task's header points at the timer, so it must stay where it is.
  timeout_guard(timeout_guard&& other) noexcept : limit_(other.limit_) {}
  timeout_guard& operator=(const timeout_guard&) = delete;
  // Normally a no-op (await_resume left already). A frame destroyed while suspended in the
  // timeout (runtime shutdown) unregisters here, after the work's frame (and the timeouts nested
  // in it) were destroyed.
  ~timeout_guard() { leave(); }

  [[nodiscard]] timeout_limit limit() const noexcept { return limit_; }

  // In await_ready: a timeout (and a timeout_scope) is awaited once (asyncio: "Timeout has
  // already been entered").
  void check_unused() const {
    if (phase_ != phase::created) {
      throw std::logic_error(
          "weft::timeout: awaited twice; a timeout (or a timeout_scope) times one awaiting");
    }
  }

  // In await_suspend, before the work can run: registers the timer as the task's unarmed timeout.
  void enter(task_header* root) noexcept {
    phase_ = phase::entered;
    timer_.root = root;  // the timer's fields are the guard's from here on (lazy_timeout)
    // Not part of a spawned task: nothing could ever be cancelled, so there is nothing to time.
    if (root == nullptr) return;
    // A pending outer timeout is armed now (once: it stays armed), so that at most one timeout of
    // the task is unarmed, and so that its expiry, if already due, is counted before ours begins.
    if (unarmed_timeout_of(root) != nullptr) arm_lazy_timeout(root);
    // Cancellation requests standing before this timeout began (asyncio compares with the count at
    // entry too): an expiry is reported as timeout_error unless a request *newer* than ours stands.
    // Ordering: acquire, as before; requests made on other threads later are newer than ours.
    requests_before_ = cancel_requests_of(root);
    if (limit_.disabled) return;  // idle until a reschedule gives it a deadline
    if (limit_.relative && limit_.after >= coarse_start_from) {
      // timeout(d), d >= 1 s: the clock starts once the work begins. A bound of now (a coarse
      // clock read, timeout_start_bound) rather than now itself; arming narrows it to
      // min(bound, now) + d, which is exact unless the work computes past the bound (up to 16 ms)
      // before its first cancellation point, and then at most 16 ms (1.6% of d) late.
      timer_.deadline = saturating_add(timeout_start_bound(), limit_.after);
      timer_.after = limit_.after;
      timer_.relative = true;
    } else {
      // Shorter: the exact start, since a coarse tick is a large part of such a deadline (an
      // outer 1 ms timeout that expired while the work computed must be seen as expired when an
      // inner one begins: test_timeout's nested cases). timeout_at: fixed.
      timer_.deadline = limit_.deadline();
      timer_.relative = false;
    }
    unarmed_timeout_of(root) = &timer_;
  }

  // The work has ended (or its frame is being destroyed): afterwards neither the task's header nor
  // the timer wheel refers to the timer, and no expiry is running. True if it fired.
  [[gnu::always_inline]] bool leave() noexcept {
    if (phase_ != phase::entered) return false;
    phase_ = phase::left;
    if (timer_.root == nullptr) return false;
    if (!timer_.armed) {
      // Never armed (lazy or idle). Timeouts nested in the work have left already (LIFO), so the
      // task's unarmed timeout is ours or, if ours is idle, an outer one that stays pending.
      if (unarmed_timeout_of(timer_.root) == &timer_) unarmed_timeout_of(timer_.root) = nullptr;
      return timer_.fired.load(std::memory_order_relaxed);  // task-local when never armed
    }
    // Waits for an expiry in progress; the poller thread's on_fire reads timer_.root and writes
    // timer_.fired, so neither may change (or be destroyed) before this returns.
    disarm_timer(timer_.entry.owner, &timer_.entry);
    // Ordering: acquire pairs with the expiry's release store (timers.cpp, on_fire).
    return timer_.fired.load(std::memory_order_acquire);
  }

  // In await_resume: leaves, then returns take() (the work's result) or throws timeout_error in
  // its place if the cancellation that ended the work was this timeout's own.
  template <class Take>
  decltype(auto) finish(Take&& take) {
    // The common case inline (the work ended before any expiry); the rest out of line.
    if (!leave()) [[likely]]
      return take();
    return finish_fired(take);
  }

  // finish() of a timeout that fired.
  template <class Take>
  [[gnu::noinline]] decltype(auto) finish_fired(Take& take) {
    task_header* root = timer_.root;
    // Fired: take our request back whatever the work did (asyncio's uncancel() on every exit of
    // an expired timeout), so no stray cancellation reaches the task's next point.
    const std::uint32_t standing = withdraw_cancel_request(root);
    try {
      return take();
    } catch (const cancelled_error&) {
      // Ours, and no other cancellation request newer than this timeout stands.
      if (standing <= requests_before_) throw timeout_error();
      throw;
    }
  }

  // timeout_scope::when(): the deadline, or none (disabled).
  [[nodiscard]] std::optional<clock::time_point> when() const noexcept {
    if (limit_.disabled) return std::nullopt;
    if (phase_ != phase::created && timer_.root != nullptr) return timer_.deadline;
    return limit_.at;  // a scope's deadline is absolute from the start
  }

  // timeout_scope::expired(): the deadline passed and the expiry requested the cancellation.
  [[nodiscard]] bool expired() const noexcept {
    // Ordering: acquire pairs with fire_lazy_timeout's release store (on the poller thread); a
    // snapshot while the timer is armed, final once the scope has ended.
    return timer_.fired.load(std::memory_order_acquire);
  }

  // timeout_scope::reschedule(): the task itself, before, inside or (error) after the scope.
  void reschedule(std::optional<clock::time_point> when) {
    if (phase_ == phase::left) {
      throw std::logic_error("weft::timeout_scope::reschedule: the scope has ended");
    }
    limit_.disabled = !when.has_value();
    limit_.relative = false;
    if (when) limit_.at = *when;
    if (phase_ == phase::created || timer_.root == nullptr) return;  // enter() reads limit_
    // Expired already: a cancellation was requested and stays requested (asyncio raises
    // RuntimeError for an expiring timeout; here the expiry runs on the poller thread, so the
    // task cannot know it before calling, and an error it cannot avoid would help nobody).
    // Ordering: acquire pairs with the expiry's release store (timers.cpp, on_fire).
    if (timer_.fired.load(std::memory_order_acquire)) return;
    if (unarmed_timeout_of(timer_.root) == &timer_) {  // lazy: still free to change
      if (when) {
        timer_.deadline = *when;
        timer_.relative = false;  // exact: arming keeps it
      } else {
        // Idle; nothing else was pending (enter armed it).
        unarmed_timeout_of(timer_.root) = nullptr;
      }
      return;
    }
    if (timer_.armed) {
      // False: it fired meanwhile (on the poller thread); it stays expired, as above.
      if (!disarm_timer(timer_.entry.owner, &timer_.entry)) return;
      timer_.armed = false;
    }
    if (!when) return;  // idle
    // Armed at once rather than lazily: another timeout nested in the work may be the task's
    // pending one, and there is room for one. A deadline that has passed fires here, and the
    // work sees the cancellation at its next cancellation point.
    timer_.deadline = *when;
    timer_.relative = false;
    arm_timeout_now(timer_.root, &timer_);
  }

 private:
  enum class phase : unsigned char { created, entered, left };

  timeout_limit limit_;
  lazy_timeout timer_;
  std::uint32_t requests_before_ = 0;
  phase phase_ = phase::created;
};

// How a timeout awaitable holds its guard: by value (timeout, timeout_at, wait_for), or by
// reference to a timeout_scope that the caller keeps (and may reschedule from inside the work).
class timeout_owned {
 public:
  explicit timeout_owned(timeout_limit limit) noexcept : guard_(limit) {}
  [[nodiscard]] timeout_guard& guard() noexcept { return guard_; }

 private:
  timeout_guard guard_;
};
class timeout_borrowed {
 public:
  explicit timeout_borrowed(timeout_guard& guard) noexcept : guard_(&guard) {}
  [[nodiscard]] timeout_guard& guard() noexcept { return *guard_; }

 private:
  timeout_guard* guard_;
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

template <class A, class Guard = detail::timeout_owned>
class timeout_awaitable;

// The awaitable of timeout(d, task): awaits the task inline (like co_await task) under the timer.
template <class T, class Guard>
class [[nodiscard]] timeout_awaitable<task<T>, Guard> : private Guard {
 public:
  using task_type = task<T>;  // what spawn, gather and task_group turn it into

  // Owns the work's frame from here on (one handle, not a task and a handle beside it: the
  // awaiting then writes and tests one word, where it used to move the frame from one to the
  // other).
  timeout_awaitable(Guard guard, task<T> work) noexcept
      : Guard(std::move(guard)), frame_(work.release()) {}
  // Before it is awaited only (see timeout_guard).
  timeout_awaitable(timeout_awaitable&& other) noexcept
      : Guard(std::move(other)), frame_(std::exchange(other.frame_, {})) {}
  ~timeout_awaitable() {
    if (frame_) frame_.destroy();  // before the guard: nested timeouts leave first
  }

  // A weft::task that awaits this timeout, for where a task is needed (spawn, gather, a vector).
  operator task<T>() && {  // NOLINT(google-explicit-constructor): a timeout is a task to the user
    return as_task(std::move(static_cast<Guard&>(*this)), task<T>(std::exchange(frame_, {})));
  }

  [[nodiscard]] bool await_ready() {
    if (!frame_) {
      throw std::logic_error(
          "weft::timeout: no work to await (the timeout was moved into a task, or was given an "
          "empty task)");
    }
    this->guard().check_unused();
    // wait_for(work, 0s): asyncio.wait_for(coro, 0) cancels the task before it ever ran and
    // raises TimeoutError. The work is destroyed unstarted with this awaitable.
    if (this->guard().limit().expired_before_start()) throw timeout_error();
    return false;
  }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    detail::task_header* root = detail::root_of(caller);
    this->guard().enter(root);
    frame_.promise().set_awaited(caller, root);
    return frame_;
  }
  decltype(auto) await_resume() {
    return this->guard().finish(
        [this]() -> decltype(auto) { return detail::take_result(frame_.promise()); });
  }

 private:
  static task<T> as_task(Guard guard, task<T> work) {
    co_return co_await timeout_awaitable(std::move(guard), std::move(work));
  }

  typename task<T>::handle_type frame_;  // the work; null once moved into a task
};

// The awaitable of timeout(d, handle): awaits the handle (a cancellation point, which arms the
// timer) and cancels its task on expiry.
template <class T, class Guard>
class [[nodiscard]] timeout_awaitable<join_handle<T>, Guard> : private Guard {
 public:
  using task_type = task<T>;

  timeout_awaitable(Guard guard, join_handle<T> work)
      : Guard(std::move(guard)), handle_(std::move(work)), inner_(handle_.operator co_await()) {}
  // Before it is awaited only (see timeout_guard); the inner awaiter is made anew for handle_.
  timeout_awaitable(timeout_awaitable&& other)
      : Guard(std::move(other)),
        handle_(std::move(other.handle_)),
        inner_(handle_.operator co_await()) {}

  operator task<T>() && {  // NOLINT(google-explicit-constructor): see above
    return as_task(std::move(static_cast<Guard&>(*this)), std::move(handle_));
  }

  [[nodiscard]] bool await_ready() {
    this->guard().check_unused();
    return inner_.await_ready();
  }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    this->guard().enter(detail::root_of(caller));
    // Once the inner wait is registered, *this may be resumed on another worker: nothing after.
    return inner_.await_suspend(caller);
  }
  decltype(auto) await_resume() {
    return this->guard().finish([this]() -> decltype(auto) { return inner_.await_resume(); });
  }

 private:
  static task<T> as_task(Guard guard, join_handle<T> work) {
    co_return co_await timeout_awaitable(std::move(guard), std::move(work));
  }

  join_handle<T> handle_;
  decltype(std::declval<join_handle<T>&>().operator co_await()) inner_;  // refers to handle_
};

// A timeout that the work inside it can move: asyncio's `async with asyncio.timeout(d) as cm`,
// with cm.reschedule(), cm.when() and cm.expired() (Python 3.11). Made before the awaiting, kept
// by the caller, awaited once with weft::timeout(scope, work), and passed by reference into the
// work if the work moves the deadline:
//
//   weft::timeout_scope scope(std::nullopt);              // asyncio.timeout(None): no deadline yet
//   co_await weft::timeout(scope, serve(conn, scope));    // serve calls scope.reschedule(...)
//   if (scope.expired()) ...                              // after a caught timeout_error, say
//
//   weft::task<void> serve(connection& conn, weft::timeout_scope& idle) {
//     for (;;) {
//       idle.reschedule(weft::now() + 30s);                // each request renews the idle limit
//       co_await handle(co_await conn.read_request());
//     }
//   }
//
// As asyncio.timeout(delay), timeout_scope(d) fixes its deadline when it is made (now() + d);
// timeout_scope::at(t) is asyncio.timeout_at(t). The expiry, its timeout_error and the lazily
// armed timer are those of weft::timeout (below).
//
// Requires: reschedule is called by the task that awaits the scope (from inside the work, or
// before or after the awaiting); when() likewise. expired() may be read from any thread.
class timeout_scope {
 public:
  template <class Rep, class Period>
  explicit timeout_scope(std::chrono::duration<Rep, Period> delay)
      : guard_(detail::timeout_limit{
            .at = detail::saturating_add(weft::now(), detail::saturating_ceil_ns(delay))}) {}
  // asyncio.timeout(None): no deadline until reschedule gives it one.
  explicit timeout_scope(std::nullopt_t) noexcept
      : guard_(detail::timeout_limit{.disabled = true}) {}
  template <class Duration>
  [[nodiscard]] static timeout_scope at(std::chrono::time_point<clock, Duration> deadline) {
    return timeout_scope(
        clock::time_point(detail::saturating_ceil_ns(deadline.time_since_epoch())));
  }
  timeout_scope(timeout_scope&&) = delete;  // the awaiting (and the work) refer to it

  // The deadline (Timeout.when()); std::nullopt while disabled.
  [[nodiscard]] std::optional<clock::time_point> when() const noexcept { return guard_.when(); }

  // Moves the deadline (Timeout.reschedule(when)), from inside the work too: a later one, an
  // earlier one, one that has passed (expires at the work's next cancellation point, as
  // asyncio's expires at the loop's next iteration), or std::nullopt (disabled). A timeout that
  // expired already stays expired (its cancellation was requested; asyncio raises RuntimeError
  // there). Throws std::logic_error after the scope has ended, as asyncio does.
  template <class Duration>
  void reschedule(std::chrono::time_point<clock, Duration> deadline) {
    guard_.reschedule(clock::time_point(detail::saturating_ceil_ns(deadline.time_since_epoch())));
  }
  void reschedule(std::nullopt_t) { guard_.reschedule(std::nullopt); }
  void reschedule(std::optional<clock::time_point> deadline) { guard_.reschedule(deadline); }

  // True once the deadline passed and the timeout requested the work's cancellation
  // (Timeout.expired()). The awaiting then throws timeout_error, unless the work swallowed the
  // cancellation and returned normally (asyncio: the same).
  [[nodiscard]] bool expired() const noexcept { return guard_.expired(); }

 private:
  template <class A>
  friend auto timeout(timeout_scope& scope, A work);
  explicit timeout_scope(clock::time_point at) noexcept : guard_(detail::timeout_limit{.at = at}) {}
  // timeout_scope is neither movable nor copyable; at() relies on guaranteed copy elision.

  detail::timeout_guard guard_;
};

// Awaits `work` (a task, or a join_handle moved in) under `scope`'s deadline, which the work may
// move (timeout_scope::reschedule). A scope is awaited once.
template <class A>
auto timeout(timeout_scope& scope, A work) {
  return timeout_awaitable<std::remove_cvref_t<A>, detail::timeout_borrowed>(
      detail::timeout_borrowed(scope.guard_), std::move(work));
}

// Awaits `work` without a deadline: asyncio.timeout(None) when nothing will reschedule it (a
// timeout that is optional for the caller: pass std::nullopt instead of a duration).
template <class A>
auto timeout(std::nullopt_t, A work) {
  return timeout_awaitable<std::remove_cvref_t<A>>(
      detail::timeout_owned(detail::timeout_limit{.disabled = true}), std::move(work));
}

// Awaits `work` (a task, or a join_handle moved in) and throws timeout_error if it is not done by
// `deadline`. A deadline that has passed expires at the work's first cancellation point (work that
// finishes without reaching one returns its value), as timeout(0s) does; time_point::max() never.
// A time point of the clock in other units is rounded up and saturated (detail/duration.hpp).
template <class A, class Duration>
timeout_awaitable<std::remove_cvref_t<A>> timeout_at(
    std::chrono::time_point<clock, Duration> deadline, A work) {
  const clock::time_point at(detail::saturating_ceil_ns(deadline.time_since_epoch()));
  return timeout_awaitable<std::remove_cvref_t<A>>(
      detail::timeout_owned(detail::timeout_limit{.at = at}), std::move(work));
}

// Awaits `work` and throws timeout_error if it takes longer than `duration`. Saturating
// (detail/duration.hpp): duration::max() never expires; zero, negative and NaN durations expire
// at the work's first cancellation point, like asyncio.wait_for(aw, 0).
template <class A, class Rep, class Period>
auto timeout(std::chrono::duration<Rep, Period> duration, A work) {
  const detail::timeout_limit limit{.after = detail::saturating_ceil_ns(duration),
                                    .relative = true};
  return timeout_awaitable<std::remove_cvref_t<A>>(detail::timeout_owned(limit), std::move(work));
}

// asyncio.wait_for's argument order. One difference from timeout(d, work), as in asyncio: a
// duration of zero or less (or NaN) on a task throws timeout_error without starting it. (On a
// join_handle the task runs already: it is cancelled and awaited, then timeout_error, unless it
// finished before.)
template <class A, class Rep, class Period>
auto wait_for(A work, std::chrono::duration<Rep, Period> duration) {
  const detail::timeout_limit limit{
      .after = detail::saturating_ceil_ns(duration), .relative = true, .expire_before_start = true};
  return timeout_awaitable<std::remove_cvref_t<A>>(detail::timeout_owned(limit), std::move(work));
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
