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
// returned a result throws std::logic_error. One task awaits a handle at a time: a second task
// that awaits it while the first still waits gets std::logic_error (asyncio allows several; weft
// keeps one waiter word per task, docs/diagnostics.md). A task cancelled because its runtime shut
// down reports weft::runtime_stopped to its awaiter, as does a task abandoned by the shutdown.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
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
  explicit join_handle(handle_type frame) noexcept
      : word_(reinterpret_cast<std::uintptr_t>(frame.address())) {}
  join_handle(join_handle&& other) noexcept : word_(other.bits()) { other.set_bits(0); }
  join_handle& operator=(join_handle&& other) noexcept {
    if (this != &other) {
      reset();
      set_bits(other.bits());
      other.set_bits(0);
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  // True once the task finished (with a value or an exception), or was abandoned at shutdown.
  [[nodiscard]] bool done() const noexcept { return bits() != 0 && promise().finished(); }

  // False for a default-constructed, moved-from or detached handle.
  [[nodiscard]] bool valid() const noexcept { return bits() != 0; }

  // Lets the task run on without a handle. Its result is dropped; an exception it ends with is
  // reported through the runtime's log hook, since nobody can retrieve it any more. The same
  // report is made when a handle whose task failed is dropped without taking the result.
  void detach() noexcept {
    if (bits() != 0) let_go(true);
  }

  // Gives up this handle without detaching: the caller takes over the handle's share of the
  // task and must end it with detail::release_root (task_group keeps its children this way).
  [[nodiscard]] detail::task_header* release() noexcept {
    if (bits() == 0) return nullptr;
    detail::task_header* task = &promise();
    set_bits(0);
    return task;
  }

  // The task's header (for combinators such as gather).
  [[nodiscard]] detail::task_header* header() const noexcept {
    return bits() != 0 ? &promise() : nullptr;
  }

  // Takes the result of a finished task: its value, or its exception rethrown.
  // Requires: done().
  decltype(auto) take_result() {
    check_awaitable();
    // Ordering: acquire pairs with the completer's release RMW (finish_root): the value or the
    // exception is visible once `done` is.
    const std::uintptr_t state = promise().state_word().load(std::memory_order_acquire);
    if ((state & detail::task_header::done_bit) == 0) {
      if ((state & detail::task_header::abandoned_bit) != 0) {
        throw runtime_stopped("weft: the awaited task was abandoned because its runtime shut down");
      }
      throw std::logic_error("weft::join_handle::take_result: the task has not finished yet");
    }
    if (promise().ended_by_shutdown()) {
      throw runtime_stopped("weft: the awaited task was cancelled because its runtime shut down");
    }
    set_bits(bits() | taken_bit);
    return detail::take_result(promise());
  }

  // Awaiting a handle is a cancellation point. If the awaiting task is cancelled, the awaited
  // task is cancelled too (asyncio semantics); the awaiter still waits for it to finish, then
  // throws cancelled_error. The result stays in the handle (take_result or await again).
  auto operator co_await() & { return awaiter{this, false}; }
  auto operator co_await() && { return awaiter{this, false}; }

  // Requests cancellation of the task, from any thread (asyncio's Task.cancel()): it sees
  // weft::cancelled_error at its next (or current) cancellation point. Does nothing to a task that
  // finished. A task that never reaches a cancellation point is not interrupted.
  void cancel() const noexcept {
    if (bits() != 0) detail::request_cancel(&promise());
  }
  // The same with a reason (Task.cancel(msg)): the cancelled_error that the task sees carries it
  // as message(), and so does awaiting this handle if the task ends by rethrowing it. When two
  // cancels race to one delivery, the latest message wins (docs/cancellation.md). Any thread;
  // std::bad_alloc (and no cancellation) if the message cannot be stored.
  void cancel(std::string_view message) const {
    if (bits() != 0) detail::request_cancel(&promise(), message);
  }

  // True once the task finished by throwing weft::cancelled_error.
  [[nodiscard]] bool cancelled() const noexcept { return done() && promise().ended_cancelled(); }

 private:
  template <class U>
  friend auto shield(join_handle<U>& handle);

  struct awaiter : private detail::cancellable_wait, detail::join_waiter {
    join_handle* handle_;
    std::coroutine_handle<> continuation;
    bool shielded_;
    bool budget_spent = false;
    bool refused_ = false;  // another waiter was registered: await_resume throws logic_error

    awaiter(join_handle* handle, bool shielded) : handle_(handle), shielded_(shielded) {
      handle->check_awaitable();
    }

    bool await_ready() noexcept {
      if (!handle_->promise().finished()) return false;
      // Finished already: take the result without suspending, unless this task has gone on
      // for its whole budget without suspending, in which case it yields first.
      budget_spent = detail::budget_exhausted();
      return !budget_spent;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) noexcept {
      if (budget_spent) {
        detail::schedule_yield(caller);
        return true;
      }
      continuation = caller;
      notify = &resume_continuation;
      home = detail::current_runtime_core();
      on_cancel = shielded_ ? &cancel_shielded : &cancel_propagating;
      detail::task_header* child = &handle_->promise();
      if (begin(detail::root_of(caller), detail::wait_kind::join)) {
        // Cancelled before waiting. A shielded wait ends here; otherwise the cancellation passes
        // to the awaited task and we wait for it as usual.
        if (shielded_) return false;
        detail::request_cancel(child);
      }
      // Not registered: the task finished meanwhile (resume at once and take the result), or
      // another task awaits it already (resume at once and refuse). After `registered`, nothing
      // here may touch *this: the task may finish and resume us on another worker.
      switch (child->register_waiter(this)) {
        case detail::join_registration::registered:
          return true;
        case detail::join_registration::busy:
          refused_ = true;
          [[fallthrough]];
        case detail::join_registration::finished:
          abandon();
          return false;
      }
      return false;
    }

    decltype(auto) await_resume() {
      if (refused_) {
        // Nothing was registered. A cancellation taken on the way in is thrown (never lost);
        // otherwise the misuse is.
        finish();
        throw std::logic_error(
            "weft::join_handle: awaited by two tasks at once; a task can be awaited by one task "
            "at a time (await it in one task and pass the result on, or gather it once)");
      }
      finish();  // throws cancelled_error if this wait was cancelled
      return handle_->take_result();
    }

    static std::coroutine_handle<> resume_continuation(detail::join_waiter* waiter,
                                                       detail::task_header*) noexcept {
      return static_cast<awaiter*>(waiter)->continuation;
    }

    static awaiter* from_hook(detail::cancel_hook* hook) noexcept {
      return static_cast<awaiter*>(static_cast<detail::cancellable_wait*>(hook));
    }

    static void cancel_propagating(detail::cancel_hook* hook) noexcept {
      detail::request_cancel(&from_hook(hook)->handle_->promise());
    }

    static void cancel_shielded(detail::cancel_hook* hook) noexcept {
      awaiter* self = from_hook(hook);
      detail::task_header* child = &self->handle_->promise();
      // Stop waiting: take our waiter back and resume the awaiting task. The hook is published
      // before the waiter is registered, so the awaiting thread may be a few instructions from
      // registering; wait for that (it cannot block: it is running await_suspend right now),
      // unless the task finishes first, whose completer then resumes us.
      for (;;) {
        if (child->unregister_waiter(self)) {
          detail::wake(self->root()->runtime(), self->continuation);
          return;
        }
        if (child->finished()) return;
        std::this_thread::yield();
      }
    }
  };

  void check_awaitable() const {
    if (bits() == 0) throw std::logic_error("weft::join_handle: awaited an empty handle");
    if ((bits() & taken_bit) != 0) {
      throw std::logic_error("weft::join_handle: the result was already taken");
    }
  }

  void reset() noexcept {
    if (bits() != 0) let_go(false);
  }

  promise_type& promise() const noexcept {
    return handle_type::from_address(reinterpret_cast<void*>(bits() & ~taken_bit)).promise();
  }

  void let_go(bool explicit_detach) noexcept {
    const bool taken = (bits() & taken_bit) != 0;
    detail::task_header* task = &promise();
    set_bits(0);
    detail::release_root(task, taken, explicit_detach);
  }

  // The handle's word, read and written by its owner; cancel() reads it from any thread.
  // Ordering: relaxed. The owner is the only writer (moves, take_result, letting go), so its own
  // reads see its writes in program order; a canceller on another thread reads only the address
  // bits, which do not change while a cancel() may run (moving or dropping a handle that another
  // thread is cancelling through is a race on the handle itself). Atomic rather than plain so that
  // setting the taken bit while another thread cancels is not a data race: the flag shares the
  // word that cancel() reads. Plain loads and stores on x86.
  [[nodiscard]] std::uintptr_t bits() const noexcept {
    return word_.load(std::memory_order_relaxed);
  }
  void set_bits(std::uintptr_t value) noexcept { word_.store(value, std::memory_order_relaxed); }

  // The frame's address, and in bit 0 whether the result was taken (frames are at least 8-byte
  // aligned: the frame allocator's are 16). One word, so that a program keeping a million handles
  // (bench spawn_many) pays 8 bytes each; the flag is the handle's own, so it stays out of the
  // shared frame. 0: no task (default-constructed, moved from, detached, released).
  static constexpr std::uintptr_t taken_bit = 1;
  std::atomic<std::uintptr_t> word_{0};
};

// asyncio.shield: awaits `handle` without passing a cancellation on to its task. If the awaiting
// task is cancelled, this await throws cancelled_error at once while the task runs on; the handle
// stays valid, so the result can still be awaited later (outside the catch handler: C++ does not
// allow co_await inside one):
//
//   std::exception_ptr cancelled;
//   try { result = co_await weft::shield(handle); }
//   catch (const weft::cancelled_error&) { cancelled = std::current_exception(); }
//   if (cancelled) { result = co_await handle; std::rethrow_exception(cancelled); }
template <class T>
auto shield(join_handle<T>& handle) {
  return typename join_handle<T>::awaiter{&handle, true};
}

}  // namespace weft
