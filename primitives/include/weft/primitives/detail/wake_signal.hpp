// weft/primitives/detail/wake_signal.hpp: a one-waiter, auto-reset wake-up signal with a
// cancellable wait, used by merge's pumps and consumer.
//
//   notify()        wakes the task waiting in wait(), or, if none waits, leaves one token that the
//                   next wait() consumes without suspending (several notifies leave one token)
//   co_await wait() suspends until notified; a cancellation point
//
// At most one task waits at a time (the signal has one owner: merge's consumer, or one pump).
// The waiter node is the awaiter, in the waiting frame; a std::mutex guards the one-slot state
// (the signal is used at most once per stream item, so the uncontended lock costs little next to
// resuming a coroutine).
//
// Cancellation follows detail/cancellable_wait.hpp. The race between on_cancel and the
// registration is settled under the lock: if the awaiter is registered, on_cancel unregisters it
// and wakes the task, which throws cancelled_error; if not yet, it marks the awaiter so that the
// registration refuses. A waiter already granted (notify unregistered it and scheduled it) keeps
// the grant: it resumes normally and the cancellation stays pending for the next cancellation
// point, so a notification is never lost (reliability rule 3).
#pragma once

#include <coroutine>
#include <mutex>

#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::detail {

class wake_signal {
 public:
  class [[nodiscard]] awaiter : private cancellable_wait {
   public:
    explicit awaiter(wake_signal& signal) noexcept : signal_(&signal) {}
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> self) {
      require_worker("weft stream wait");
      on_cancel = &cancel_wait;
      if (begin(root_of(self))) return false;  // cancelled already
      runtime_ = current_runtime_core();
      handle_ = self;
      // After the signal's lock is dropped the awaiter may be resumed elsewhere and destroyed:
      // park() decides under it (primitives/wake_signal.cpp).
      return signal_->park(this);
    }
    void await_resume() {
      if (granted_) {
        abandon();  // keep the grant; a pending cancellation waits for the next point
        return;
      }
      finish();
    }

   private:
    friend class wake_signal;

    WEFT_API static void cancel_wait(cancel_hook* hook) noexcept;

    wake_signal* signal_;
    runtime_core* runtime_ = nullptr;
    std::coroutine_handle<> handle_;
    bool granted_ = false;  // guarded by the signal's mutex until the task resumes
    bool refused_ = false;  // guarded by the signal's mutex
  };

  wake_signal() = default;
  wake_signal(const wake_signal&) = delete;
  wake_signal& operator=(const wake_signal&) = delete;

  WEFT_API void notify();

  awaiter wait() noexcept { return awaiter(*this); }

 private:
  // Under the signal's lock: consumes a token (false: do not suspend), refuses a waiter that a
  // cancellation marked (false), or registers `w` (true: suspend).
  WEFT_API bool park(awaiter* w);

  std::mutex mutex_;
  awaiter* waiter_ = nullptr;
  bool token_ = false;
};

}  // namespace weft::detail
