// weft/scheduler/spawn.hpp: weft::spawn, Python's asyncio.create_task.
//
//   auto handle = weft::spawn(worker(1));             // inside a task: starts at once
//   auto handle = weft::spawn([](int id) -> weft::task<> { ... }, 1);   // callable + arguments
//
// The spawned task starts running on the pool without being awaited. From outside the runtime
// (a plain thread), use runtime::spawn.
//
// Lifetime: `spawn(callable, args...)` moves the callable and its arguments into the task's own
// frame, so a coroutine lambda's captures live as long as the task. Spawning the task returned by
// calling a capturing lambda, `spawn([&]() -> task<> {...}())`, is the classic dangling-capture
// bug: the lambda object dies at the end of the full expression while its coroutine still reads the
// captures. Pass the lambda itself instead: `spawn([&]() -> task<> {...})`.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

template <class F, class... Args>
using invoke_task_t = std::invoke_result_t<F&&, Args&&...>;

// A callable that, called once with rvalues of (decayed) Args, returns a weft::task.
template <class F, class... Args>
concept task_callable = std::invocable<std::decay_t<F> &&, std::decay_t<Args>&&...>&&
    is_task<invoke_task_t<std::decay_t<F>, std::decay_t<Args>...>>::value;

// A coroutine whose parameters (the callable and its arguments) live in its frame. They are
// passed on as rvalues: the call happens once, and parameters taken by reference refer to this
// frame, which lives until the called task finishes.
template <class F, class... Args>
auto call_in_frame(F callable, Args... args) -> invoke_task_t<F, Args...> {
  co_return co_await std::invoke(std::move(callable), std::move(args)...);
}

// What spawn (weft::spawn, runtime::spawn, task_group::spawn) accepts: a task (an rvalue), an
// awaitable that stands for one (task_convertible: a weft::timeout), or a callable and its
// arguments whose call returns a task.
template <class W, class... Args>
concept spawnable = (sizeof...(Args) == 0 && !std::is_lvalue_reference_v<W> &&
                     (is_task<std::remove_cvref_t<W>>::value ||
                      task_convertible<std::remove_cvref_t<W>>)) ||
                    task_callable<W, Args...>;

// The one place that turns each of spawnable's forms into the task to start. A callable and
// copies of its arguments are moved into the frame of a coroutine that calls it (call_in_frame),
// so they live as long as the task.
template <class W, class... Args>
requires spawnable<W, Args...>
auto make_task(W&& work, Args&&... args) {
  using plain = std::remove_cvref_t<W>;
  if constexpr (sizeof...(Args) == 0 && is_task<plain>::value) {
    return plain(std::move(work));
  } else if constexpr (sizeof...(Args) == 0 && task_convertible<plain>) {
    return typename plain::task_type(std::move(work));
  } else {
    return call_in_frame(std::decay_t<W>(std::forward<W>(work)),
                         std::decay_t<Args>(std::forward<Args>(args))...);
  }
}

// The task `work` with the name diagnostics show for it (tasks(), reports, dumps); the one place
// every spawn_named (free, runtime, frame_executor, task_group) names a task. `name` must outlive
// the task (a string literal).
template <class T>
task<T> named(const char* name, task<T> work) noexcept {
  auto frame = work.release();
  if (frame) frame.promise().set_name(name);
  return task<T>(frame);
}

template <class T>
join_handle<T> spawn_on(runtime_core* rt, task<T> work, bool eager = false) {
  auto frame = work.release();
  if (!frame) throw std::invalid_argument("weft::spawn: the task is empty (moved-from?)");
  try {
    spawn_root(rt, &frame.promise(), eager);
  } catch (...) {
    frame.destroy();
    throw;
  }
  return join_handle<T>(frame);
}

}  // namespace detail

// Starts `work` on the runtime whose worker is calling: a task, an awaitable that stands for one
// (a weft::timeout), or `callable(args...)` returning a task, with the callable and copies of the
// arguments stored in the task's frame. Throws std::logic_error when called outside a runtime
// (use runtime::spawn there).
template <class W, class... Args>
requires detail::spawnable<W, Args...>
auto spawn(W&& work, Args&&... args) {
  return detail::spawn_on(nullptr,
                          detail::make_task(std::forward<W>(work), std::forward<Args>(args)...));
}

// Same as spawn(work, args...), but the task starts at once: it runs on the calling worker, before
// spawn_eager returns, until its first suspension (or to its end), as a task made by Python
// 3.12's eager task factory. A task that finishes without suspending never enters a run queue
// (its handle is done on return: no scheduling cost at all); one that suspends is scheduled as
// usual from then on. Use it for work that often completes at once (a cache hit, a ready
// queue). Not a cancellation point for the caller; the new task's own cancellation points work as
// usual. Throws std::logic_error when called outside a runtime.
template <class W, class... Args>
requires detail::spawnable<W, Args...>
auto spawn_eager(W&& work, Args&&... args) {
  detail::require_worker("weft::spawn_eager");
  return detail::spawn_on(
      nullptr, detail::make_task(std::forward<W>(work), std::forward<Args>(args)...), true);
}

// Same as spawn(work), with a name shown by diagnostics. `name` must outlive the task (a literal).
template <class T>
join_handle<T> spawn_named(const char* name, task<T> work) {
  return spawn(detail::named(name, std::move(work)));
}

}  // namespace weft
