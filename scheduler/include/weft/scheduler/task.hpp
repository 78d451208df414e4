// weft/scheduler/task.hpp: weft::task<T>, the coroutine type of weft (Python's `async def`).
//
//   weft::task<int> answer() { co_await weft::sleep(1ms); co_return 42; }
//   weft::task<> caller() { int x = co_await answer(); ... }
//
// A task is lazy: calling answer() allocates its frame and runs nothing. `co_await` starts it and
// suspends the caller; when the task finishes, the caller resumes on the same thread by symmetric
// transfer, so a chain of a million nested awaits uses no stack (in a g++ debug build too:
// detail/await_trampoline.hpp). The task's value or exception
// comes out of the `co_await`. To run a task concurrently, spawn it (spawn.hpp); to run it from
// main, weft::run (runtime.hpp).
//
// A task is move-only and [[nodiscard]]: dropping one unawaited destroys it without running it, and
// the compiler warns, because in Python that mistake ("coroutine was never awaited") is silent.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/await_trampoline.hpp>
#include <weft/scheduler/detail/frame_allocator.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

namespace weft {

template <class T = void>
class task;

namespace detail {

// The final suspend point: an awaited task resumes its awaiter; a spawned task reports completion
// to the runtime (which may destroy the frame, so nothing here touches the promise afterwards).
struct final_awaiter {
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
    auto& promise = self.promise();
    // Through transfer() (await_trampoline.hpp), so that the stack stays flat in builds without
    // tail calls. complete_root may destroy the frame; transfer() only compares its address.
    // An awaited task (no runtime) resumes its awaiter, if it has one.
    if (promise.runtime() == nullptr) {
      if (const std::coroutine_handle<> next = promise.continuation()) return transfer(self, next);
      return std::noop_coroutine();
    }
    // A fork_join child's `group` is its fork_slot (fork_join.hpp), whose child_done counts it and
    // picks what runs next.
    if (promise.fork_child()) [[unlikely]]
      return transfer(self, promise.group()->child_done(promise.group(), &promise));
    return transfer(self, complete_root(&promise));
  }
  void await_resume() const noexcept {}
};

class promise_base : public task_header {
 public:
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    deallocate_frame(frame, size);
  }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { set_exception(std::current_exception()); }

  void rethrow_if_failed() const {
    if (failed()) std::rethrow_exception(exception());
  }

  // The coroutine that awaits this task, resumed at its end (continuation()), and the spawned task
  // this coroutine runs as part of (root(): itself once spawned, its awaiter's root when awaited;
  // cancellable waits find the task to cancel through it) live in the header: an awaited task
  // keeps them where a spawned one keeps its registry links (task_header.hpp).
};

// The spawned task that the coroutine `self` runs as part of, or null (a coroutine that is not a
// weft::task).
template <class Promise>
task_header* root_of(std::coroutine_handle<Promise> self) noexcept {
  if constexpr (std::is_base_of_v<promise_base, Promise>) {
    return self.promise().root();
  } else {
    return nullptr;
  }
}

template <class T>
class task_promise final : public promise_base {
 public:
  task_promise() noexcept {}
  ~task_promise() {
    if (has_value_) std::destroy_at(std::addressof(value_));
  }
  task_promise(const task_promise&) = delete;
  task_promise& operator=(const task_promise&) = delete;

  task<T> get_return_object() noexcept;

  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    std::construct_at(std::addressof(value_), std::forward<U>(value));
    has_value_ = true;
  }

  T& value_ref() {
    rethrow_if_failed();
    return value_;
  }

 private:
  union {
    T value_;
  };
  bool has_value_ = false;
};

template <class T>
class task_promise<T&> final : public promise_base {
 public:
  task<T&> get_return_object() noexcept;
  void return_value(T& value) noexcept { value_ = std::addressof(value); }
  T& value_ref() {
    rethrow_if_failed();
    return *value_;
  }

 private:
  T* value_ = nullptr;
};

template <>
class task_promise<void> final : public promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void value_ref() const { rethrow_if_failed(); }
};

// Takes the result out of a finished promise: moves a value, passes a reference, rethrows.
template <class T>
decltype(auto) take_result(task_promise<T>& promise) {
  if constexpr (std::is_void_v<T>) {
    promise.value_ref();
  } else if constexpr (std::is_reference_v<T>) {
    return promise.value_ref();
  } else {
    return T(std::move(promise.value_ref()));
  }
}

}  // namespace detail

template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;
  using handle_type = std::coroutine_handle<promise_type>;

  task() noexcept = default;
  explicit task(handle_type frame) noexcept : frame_(frame) {}
  task(task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.frame_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  // False for a default-constructed or moved-from task.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(frame_); }

  // Awaiting starts the task and resumes the awaiter, on the thread that finished the task, with
  // its value (moved out) or its exception. Awaiting consumes the task: the frame is destroyed
  // at the end of the co_await expression and the task object is left empty, so awaiting it
  // again (or awaiting a moved-from task) throws std::logic_error instead of resuming a finished
  // coroutine.
  auto operator co_await() && { return awaiter{take_for_await()}; }
  auto operator co_await() & { return awaiter{take_for_await()}; }

  // Gives up ownership of the frame (used by spawn).
  [[nodiscard]] handle_type release() noexcept { return std::exchange(frame_, {}); }

 private:
  struct awaiter {
    handle_type frame;
    // The awaiting weft::task's header, whose `awaiting` link (runtime::dump's await chain) this
    // awaiter sets while it is suspended; null when the awaiting coroutine is not a weft::task.
    detail::task_header* parent = nullptr;
    explicit awaiter(handle_type f) noexcept : frame(f) {}
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() { frame.destroy(); }
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
      frame.promise().set_awaited(caller, detail::root_of(caller));
      if constexpr (std::is_base_of_v<detail::promise_base, Promise>) {
        // Relaxed: see task_header::awaiting (a dump reads it after the hook's publication).
        parent = &caller.promise();
        parent->awaiting_link().store(&frame.promise(), std::memory_order_relaxed);
      }
      return detail::transfer(caller, frame);
    }
    decltype(auto) await_resume() {
      if (parent != nullptr) parent->awaiting_link().store(nullptr, std::memory_order_relaxed);
      return detail::take_result(frame.promise());
    }
  };

  handle_type take_for_await() {
    if (!frame_)
      throw std::logic_error("weft::task: awaited an empty task (moved-from or awaited)");
    return std::exchange(frame_, {});
  }

  void reset() noexcept {
    if (frame_) std::exchange(frame_, {}).destroy();
  }

  handle_type frame_;
};

// An awaitable that stands for a task where one is needed: it names the task it becomes
// (`task_type`, a weft::task) and converts to it from an rvalue. weft::timeout's awaitable is one;
// spawn, gather and task_group::spawn accept these as they accept the task itself.
template <class A>
concept task_convertible = requires {
  typename A::task_type;
}
&&std::is_convertible_v<A&&, typename A::task_type>;

namespace detail {
// The header finds its frame two pointers before itself (task_header::frame_prefix), which holds
// for a promise aligned to at most 16 bytes. g++ allocates coroutine frames through operator new
// without an alignment anyway, so a more aligned result could not be kept in a frame correctly.
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  static_assert(alignof(task_promise<T>) <= task_header::max_promise_alignment,
                "weft::task<T>: T may be aligned to at most 16 bytes (a coroutine frame is not)");
  return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
  return task<T&>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
}  // namespace detail

}  // namespace weft
