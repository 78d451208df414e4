// primitives/condition_variable.cpp: weft::condition_variable's notifications and its wait (the
// semantics are in <weft/primitives/condition_variable.hpp>).
#include <weft/primitives/condition_variable.hpp>

#include <exception>

#include "wait_list.hpp"

namespace weft {

// Wakes the first waiter, if any. Any thread.
void condition_variable::notify_one() noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    detail::grant_front(queue_, woken);
  }
  detail::wake_all(woken);
}

// Wakes the first `n` waiters (fewer if fewer wait), as asyncio's Condition.notify(n). Any
// thread.
void condition_variable::notify(std::size_t n) noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    for (std::size_t i = 0; i < n && detail::grant_front(queue_, woken) != nullptr; ++i) {
    }
  }
  detail::wake_all(woken);
}

// Wakes every waiter. Any thread.
void condition_variable::notify_all() noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    while (detail::grant_front(queue_, woken) != nullptr) {
    }
  }
  detail::wake_all(woken);
}

// Queues, unlocks the mutex, suspends. Resumes without the lock, except when it did not suspend
// (a pending cancellation): then the guard still holds it.
class condition_variable::notified_awaiter : private detail::queued_wait {
 public:
  notified_awaiter(condition_variable& cv, mutex::guard& guard) noexcept
      : queued_wait(&cv.queue_), cv_(&cv), guard_(&guard) {}
  notified_awaiter(const notified_awaiter&) = delete;
  notified_awaiter& operator=(const notified_awaiter&) = delete;
  // Destroyed while waiting (runtime shutdown): a notification it was chosen for goes on.
  ~notified_awaiter() {
    if (leave_queue() == detail::node_state::granted) cv_->notify_one();
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    // A pending cancellation does not suspend: the guard keeps the lock, await_resume throws.
    mutex* const held = guard_->get_mutex();
    if (!suspend_in_queue(self, detail::wait_kind::condition_variable_wait, &queue_and_release,
                          this)) {
      return false;
    }
    // Safety: a notify may resume the task elsewhere now; only the local `held` is used. The
    // task was queued before the unlock, so a notify made after it sees the change is not lost.
    held->unlock();
    return true;
  }

  void await_resume() {
    if (node_.state != detail::node_state::granted) {
      finish();
      throw cancelled_error();
    }
    try {
      finish();
    } catch (...) {
      cv_->notify_one();  // chosen by notify_one, but cancelled: pass the notification on
      throw;
    }
  }

 private:
  // Under the queue's lock (suspend_in_queue's decision): always waits; the guard lets go of the
  // lock, which await_suspend unlocks once the queue's lock is dropped.
  static bool queue_and_release(void* self) noexcept {
    auto* awaiter = static_cast<notified_awaiter*>(self);
    (void)awaiter->guard_->release();
    detail::push_back(*awaiter->queue_, &awaiter->node_);
    return true;
  }

  condition_variable* cv_;
  mutex::guard* guard_;
};

task<void> condition_variable::wait(mutex::guard& guard) {
  mutex* m = guard.get_mutex();
  std::exception_ptr error;
  bool notified = false;
  try {
    co_await notified_awaiter(*this, guard);
    notified = true;
  } catch (...) {
    error = std::current_exception();
  }
  if (!guard.owns_lock()) guard = co_await mutex::lock_awaiter(*m, /*cancellable=*/false);
  if (notified) {
    // A cancellation that arrived while relocking (which cannot be interrupted) is delivered now,
    // holding the lock, instead of staying pending for some later cancellation point: the
    // header comment's promise. The notification this waiter used goes on to the next one.
    detail::task_header* root = co_await detail::current_root_awaiter{};
    if (detail::take_cancellation(root)) {
      notify_one();
      throw detail::cancellation_of(root);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace weft
