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

template <class T>
join_handle<T> spawn_on(runtime_core* rt, task<T> work) {
  auto frame = work.release();
  if (!frame) throw std::invalid_argument("weft::spawn: the task is empty (moved-from?)");
  frame.promise().frame = frame;
  frame.promise().root = &frame.promise();
  try {
    spawn_root(rt, &frame.promise());
  } catch (...) {
    frame.destroy();
    throw;
  }
  return join_handle<T>(frame);
}

}  // namespace detail

// Starts `work` on the runtime whose worker is calling. Throws std::logic_error when called outside
// a runtime (use runtime::spawn there).
template <class T>
join_handle<T> spawn(task<T> work) {
  return detail::spawn_on(nullptr, std::move(work));
}

// Starts an awaitable that stands for a task (task_convertible: a weft::timeout, say).
template <task_convertible A>
auto spawn(A&& work) requires(!std::is_lvalue_reference_v<A>) {
  return spawn(typename A::task_type(std::move(work)));
}

// Starts `callable(args...)`, which must return a weft::task, with the callable and copies of the
// arguments stored in the task's frame.
template <class F, class... Args>
auto spawn(F&& callable, Args&&... args) requires detail::task_callable<F, Args...> {
  return spawn(detail::call_in_frame(std::decay_t<F>(std::forward<F>(callable)),
                                     std::decay_t<Args>(std::forward<Args>(args))...));
}

// Same as spawn(work), with a name shown by diagnostics. `name` must outlive the task (a literal).
template <class T>
join_handle<T> spawn_named(const char* name, task<T> work) {
  auto frame = work.release();
  if (frame) frame.promise().name = name;
  return spawn(task<T>(frame));
}

}  // namespace weft
