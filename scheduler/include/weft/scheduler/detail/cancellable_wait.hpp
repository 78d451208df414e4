// weft/scheduler/detail/cancellable_wait.hpp: the common part of every cancellable awaiter.
//
// An awaiter that can be cancelled derives from cancellable_wait, sets `on_cancel`, and follows
// this sequence (docs/cancellation.md):
//
//   begin(root)         in await_suspend: a cancellation already pending is delivered without
//                       suspending (begin returns true); otherwise the hook is published, before
//                       the wait is registered anywhere, so the task cannot be resumed while its
//                       hook is still being published
//   register the wait   arm the timer, park on the fd, register as a join waiter, ...; after this
//                       succeeds, await_suspend must not touch the awaiter again: the wait may
//                       complete and resume the task on another worker at once
//   finish()            in await_resume: withdraw the hook (waiting for an on_cancel that is still
//                       running) and throw cancelled_error if the wait was cancelled or a
//                       cancellation is pending
//
// on_cancel runs on the cancelling thread, possibly before the wait is registered. The race
// between it and the registration is settled on the registration itself, never by re-reading the
// awaiter afterwards: the timer entry is marked under the wheel's lock so that arming refuses, the
// fd's slot is marked so that parking refuses, a shielded join waits the few instructions until
// its waiter is registered, and waits that only pass the cancellation on (join, gather, groups)
// need no undoing at all.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::detail {

// What a cancellable wait is on, as runtime::dump names it (wait_kind_name). One byte, so that it
// fits in the awaiter's padding.
enum class wait_kind : std::uint8_t {
  unnamed,
  sleep,
  io,
  join,
  to_thread,
  compute,
  gather,
  task_group_join,
  oneshot,
  mutex_lock,
  semaphore_acquire,
  event_wait,
  condition_variable_wait,
  barrier_wait,
  queue,
  queue_get,
  queue_put,
  queue_join,
  channel_receive,
  channel_send,
};

inline const char* wait_kind_name(wait_kind kind) noexcept {
  switch (kind) {
    case wait_kind::unnamed:
      return "a cancellable wait";
    case wait_kind::sleep:
      return "sleep";
    case wait_kind::io:
      return "I/O readiness";
    case wait_kind::join:
      return "join_handle (a spawned task)";
    case wait_kind::to_thread:
      return "to_thread";
    case wait_kind::compute:
      return "compute";
    case wait_kind::gather:
      return "gather";
    case wait_kind::task_group_join:
      return "task_group::join";
    case wait_kind::oneshot:
      return "oneshot";
    case wait_kind::mutex_lock:
      return "mutex::lock";
    case wait_kind::semaphore_acquire:
      return "semaphore::acquire";
    case wait_kind::event_wait:
      return "event::wait";
    case wait_kind::condition_variable_wait:
      return "condition_variable::wait";
    case wait_kind::barrier_wait:
      return "barrier::arrive_and_wait";
    case wait_kind::queue:
      return "a primitive's queue";
    case wait_kind::queue_get:
      return "queue::get";
    case wait_kind::queue_put:
      return "queue::put";
    case wait_kind::queue_join:
      return "queue::join";
    case wait_kind::channel_receive:
      return "channel::receive";
    case wait_kind::channel_send:
      return "channel::send";
  }
  return "a cancellable wait";
}

class cancellable_wait : public cancel_hook {
 public:
  cancellable_wait() = default;
  cancellable_wait(const cancellable_wait&) = delete;
  cancellable_wait& operator=(const cancellable_wait&) = delete;
  // An awaiter destroyed while its hook is still published: its frame is destroyed while suspended
  // (the runtime shut down and destroyed the task). The hook is taken back first, waiting for a
  // canceller that holds it, so that no on_cancel runs against freed memory. After finish() or
  // abandon() nothing is published and this costs one branch.
  ~cancellable_wait() {
    if (published_) root_->withdraw_hook(this);
  }

  // True if the wait must not suspend because a cancellation is already pending. `what` names
  // what the task waits on for runtime::dump ("mutex", "sleep"; a string literal).
  bool begin(task_header* root, wait_kind what = wait_kind::unnamed) noexcept {
    root_ = root;
    if (root_ == nullptr) return false;
    // Relaxed: published by publish_hook's seq_cst store below, which a dump acquires.
    what_.store(what, std::memory_order_relaxed);
    since_.store(coarse_clock_ms(), std::memory_order_relaxed);
    if (root_->take_pending_cancel()) {
      cancelled_ = true;  // no hook was published
      return true;
    }
    if (!root_->publish_hook(this)) {
      // A cancel arrived while publishing and this call took the hook back.
      root_->take_pending_cancel();
      cancelled_ = true;
      return true;
    }
    published_ = true;
    return false;
  }

  // For await_resume: withdraws the hook and throws cancelled_error (with the cancel message, if
  // one was given) if the wait was cancelled or a cancellation is pending.
  void finish() {
    if (published_) {
      root_->withdraw_hook(this);
      published_ = false;  // withdrawn: the destructor has nothing to do
      if (root_->take_pending_cancel()) cancelled_ = true;
    }
    if (cancelled_) throw cancellation_of(root_);
  }

  // The wait ended without suspending (it completed at once): withdraw the hook, deliver nothing.
  void abandon() noexcept {
    if (published_) root_->withdraw_hook(this);
    published_ = false;
  }

 protected:
  // For on_cancel implementations.
  void mark_cancelled() noexcept { cancelled_ = true; }
  // The task that waits (null outside a spawned task). Unlike before finish(), it stays set.
  [[nodiscard]] task_header* root() const noexcept { return root_; }

 private:
  // The flags first: they fit in the tail padding of cancel_hook (a non-POD base, whose
  // padding the Itanium C++ ABI lets a derived class use), which keeps every awaiter 8 bytes
  // smaller; awaiters live in coroutine frames, so this is bytes per suspended task. For the same
  // reason the awaiting coroutine's handle is not kept here: every awaiter already records it
  // where its wake-up needs it (the timer entry, the wait node, the fd slot), and its on_cancel
  // reads it from there.
  bool cancelled_ = false;
  bool published_ = false;  // the hook is published in root_ (and not withdrawn yet)
  // For runtime::dump, in the rest of the padding: what this wait is on and when it began
  // (coarse_clock_ms). std::atomic: a dump may read an awaiter its task is reusing (it then drops
  // what it read, scheduler/dump.cpp).
  std::atomic<wait_kind> what_{wait_kind::unnamed};
  std::atomic<std::uint32_t> since_{0};
  static_assert(sizeof(std::atomic<wait_kind>) == sizeof(wait_kind) &&
                sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  task_header* root_ = nullptr;

 public:
  // runtime::dump: the two fields above. The dump reads them while the task may be building its
  // next awaiter in the same place: cancel_hook's constructor zeroes the tail padding these
  // fields live in with plain stores, so even atomic loads race with it. The dump tolerates that
  // by design (it drops what it read when the wait changed meanwhile, dump.cpp's read_chain), so
  // these are plain volatile reads that ThreadSanitizer does not instrument (an atomic load would
  // be instrumented even here, and TSan reported it against the constructor in CI). Not inlined
  // into instrumented callers: clang does not inline across differing sanitizer attributes.
  __attribute__((no_sanitize("thread"))) static wait_kind kind_of(
      const cancel_hook* hook) noexcept {
    const auto* self = static_cast<const cancellable_wait*>(hook);
    return *reinterpret_cast<const volatile wait_kind*>(&self->what_);
  }
  __attribute__((no_sanitize("thread"))) static std::uint32_t since_of(
      const cancel_hook* hook) noexcept {
    const auto* self = static_cast<const cancellable_wait*>(hook);
    return *reinterpret_cast<const volatile std::uint32_t*>(&self->since_);
  }
};

// Every awaiter embeds one: the flags ride in cancel_hook's tail padding (see above). The model
// checker's instrumented atomics (tests/model, detail/atomic.hpp) are larger and leave no such
// padding, so the size holds for the real build only.
#ifndef WEFT_MODEL_CHECK
static_assert(sizeof(cancellable_wait) == sizeof(cancel_hook) + sizeof(task_header*));
#endif

// `co_await current_root_awaiter{}` gives the spawned task that the awaiting coroutine runs as
// part of (null for a coroutine that is not a weft::task), without suspending.
struct current_root_awaiter {
  task_header* root = nullptr;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    root = root_of(self);
    return false;
  }
  [[nodiscard]] task_header* await_resume() const noexcept { return root; }
};

}  // namespace weft::detail
