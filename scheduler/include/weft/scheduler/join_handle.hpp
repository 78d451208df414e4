// weft/scheduler/join_handle.hpp: weft::join_handle<T>, the handle of a spawned task (Python's
// asyncio.Task as returned by create_task).
//
//   auto handle = weft::spawn(fetch(url));   // runs now, concurrently
//   ...
//   auto page = co_await handle;             // its value, or its exception rethrown
//
// The handle owns a share of the task: the task runs to completion whether or not the handle is
// awaited. Dropping the handle of a task that is still running lets the task go on alone, exactly
// like detach(); prefer detach() to say so. Awaiting resumes the awaiter on the thread that
// finished the task. The result can be taken once: awaiting a handle a second time after it
// returned a result throws std::logic_error.
#pragma once

#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

template <class T>
class [[nodiscard]] join_handle {
 public:
  using promise_type = detail::task_promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  join_handle() noexcept = default;
  explicit join_handle(handle_type frame) noexcept : frame_(frame) {}
  join_handle(join_handle&& other) noexcept
      : frame_(std::exchange(other.frame_, {})), taken_(other.taken_) {}
  join_handle& operator=(join_handle&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.frame_, {});
      taken_ = other.taken_;
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  // True once the task finished (with a value or an exception), or was abandoned at shutdown.
  [[nodiscard]] bool done() const noexcept { return frame_ && frame_.promise().finished(); }

  // False for a default-constructed, moved-from or detached handle.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(frame_); }

  // Lets the task run on without a handle. Its result is dropped; an exception it ends with is
  // reported through the runtime's log hook, since nobody can retrieve it any more. The same
  // report is made when a handle whose task failed is dropped without taking the result.
  void detach() noexcept { reset(); }

  // The task's header (for combinators such as gather).
  [[nodiscard]] detail::task_header* header() const noexcept {
    return frame_ ? &frame_.promise() : nullptr;
  }

  // Takes the result of a finished task: its value, or its exception rethrown.
  // Requires: done().
  decltype(auto) take_result() {
    check_awaitable();
    const std::uintptr_t state = frame_.promise().state.load(std::memory_order_acquire);
    if ((state & detail::task_header::done_bit) == 0) {
      if ((state & detail::task_header::abandoned_bit) != 0) {
        throw runtime_stopped("weft: the awaited task was abandoned because its runtime shut down");
      }
      throw std::logic_error("weft::join_handle::take_result: the task has not finished yet");
    }
    taken_ = true;
    return detail::take_result(frame_.promise());
  }

  auto operator co_await() & { return awaiter{this}; }
  auto operator co_await() && { return awaiter{this}; }

 private:
  struct awaiter : detail::join_waiter {
    join_handle* self;
    std::coroutine_handle<> continuation;
    bool budget_spent = false;

    explicit awaiter(join_handle* handle) : self(handle) { handle->check_awaitable(); }

    bool await_ready() noexcept {
      if (!self->frame_.promise().finished()) return false;
      // Finished already: take the result without suspending, unless this task has gone on
      // for its whole budget without suspending, in which case it yields first.
      budget_spent = detail::budget_exhausted();
      return !budget_spent;
    }
    bool await_suspend(std::coroutine_handle<> caller) noexcept {
      if (budget_spent) {
        detail::schedule_yield(caller);
        return true;
      }
      continuation = caller;
      notify = &resume_continuation;
      // False: the task finished meanwhile, so resume at once with its result.
      return self->frame_.promise().register_waiter(this);
    }
    decltype(auto) await_resume() { return self->take_result(); }

    static std::coroutine_handle<> resume_continuation(detail::join_waiter* waiter,
                                                       detail::task_header*) noexcept {
      return static_cast<awaiter*>(waiter)->continuation;
    }
  };

  void check_awaitable() const {
    if (!frame_) throw std::logic_error("weft::join_handle: awaited an empty handle");
    if (taken_) throw std::logic_error("weft::join_handle: the result was already taken");
  }

  void reset() noexcept {
    if (frame_) detail::release_root(&std::exchange(frame_, {}).promise(), taken_);
  }

  handle_type frame_;
  bool taken_ = false;
};

}  // namespace weft
