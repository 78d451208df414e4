// primitives/wake_signal.cpp: the paths of detail::wake_signal that take its lock (the protocol is
// in <weft/primitives/detail/wake_signal.hpp>).
#include <weft/primitives/detail/wake_signal.hpp>

namespace weft::detail {

bool wake_signal::park(awaiter* w) {
  std::lock_guard lock(mutex_);
  if (token_) {
    token_ = false;
    w->granted_ = true;
    return false;
  }
  if (w->refused_) return false;  // on_cancel ran first; await_resume throws
  waiter_ = w;
  return true;
}

void wake_signal::awaiter::cancel_wait(cancel_hook* hook) noexcept {
  auto* self = static_cast<awaiter*>(static_cast<cancellable_wait*>(hook));
  std::lock_guard lock(self->signal_->mutex_);
  if (self->signal_->waiter_ == self) {
    self->signal_->waiter_ = nullptr;
    self->mark_cancelled();
    wake(runtime_of(self->root()), self->handle_);  // set before waiter_ (same mutex)
  } else if (!self->granted_) {
    self->refused_ = true;
    self->mark_cancelled();
  }
}

void wake_signal::notify() {
  runtime_core* rt = nullptr;
  std::coroutine_handle<> handle;
  {
    std::lock_guard lock(mutex_);
    if (waiter_ == nullptr) {
      token_ = true;
      return;
    }
    awaiter* w = waiter_;
    waiter_ = nullptr;
    w->granted_ = true;
    rt = w->runtime_;
    handle = w->handle_;
  }
  // Ordering: the scheduler's queue publishes everything written under the lock to the thread
  // that resumes the waiter.
  wake(rt, handle);
}

}  // namespace weft::detail
