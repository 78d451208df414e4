// weft/primitives/condition_variable.hpp: weft::condition_variable, Python's asyncio.Condition,
// working with weft::mutex.
//
//   auto guard = co_await m.lock();
//   co_await cv.wait(guard, [&] { return !items.empty(); });   // unlocks while it waits
//   take(items);                                                // holding the lock again
//   ...
//   cv.notify_one();   // from a task or any thread; holding the lock is allowed, not required
//
// wait(guard) queues the task on the condition, unlocks the mutex, suspends until a notify wakes
// it, then locks the mutex again before it returns. Waiters are woken in FIFO order. wait(guard,
// pred) loops until pred() holds (checked with the lock held), so spurious or stolen wake-ups do
// not matter. Requires: `guard` holds the lock; it holds it again whenever wait returns or throws.
//
// Cancellation: wait is a cancellation point. A cancelled waiter relocks the mutex (relocking
// itself cannot be interrupted, so the guard always holds the lock afterwards) and throws
// cancelled_error. A waiter cancelled after notify_one chose it but before it resumed passes the
// notification on to the next waiter (reliability rule 3), so a notify_one is never lost to a
// cancellation. So does a waiter cancelled while it relocks after a notification: it relocks,
// passes the notification on and throws cancelled_error (asyncio.Condition.wait does the same;
// the extra wake-up is a spurious one, which wait(guard, pred) absorbs).
//
// Costs: the waiter node lives in the awaiter; notify_one/notify_all take the queue's spinlock.
// wait itself is a small coroutine (a frame allocation from weft's frame allocator).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/primitives/mutex.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class condition_variable {
 public:
  condition_variable() = default;
  // Requires: no task waits.
  ~condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  // Unlocks `guard`'s mutex, waits for a notification, relocks. Await it at once (`guard` is
  // held by reference).
  task<void> wait(mutex::guard& guard);

  // Waits until pred() is true, evaluating it with the lock held.
  template <class Predicate>
  task<void> wait(mutex::guard& guard, Predicate pred) {
    while (!pred())
      co_await wait(guard);
  }

  // Wakes the first waiter, if any. Any thread.
  void notify_one() noexcept {
    detail::wait_node* woken = nullptr;
    {
      detail::queue_lock_guard lock(queue_.lock);
      queue_.grant_front(woken);
    }
    detail::wait_queue::wake_all(woken);
  }

  // Wakes the first `n` waiters (fewer if fewer wait), as asyncio's Condition.notify(n). Any
  // thread.
  void notify(std::size_t n) noexcept {
    detail::wait_node* woken = nullptr;
    {
      detail::queue_lock_guard lock(queue_.lock);
      for (std::size_t i = 0; i < n && queue_.grant_front(woken) != nullptr; ++i) {
      }
    }
    detail::wait_queue::wake_all(woken);
  }

  // Wakes every waiter. Any thread.
  void notify_all() noexcept {
    detail::wait_node* woken = nullptr;
    {
      detail::queue_lock_guard lock(queue_.lock);
      while (queue_.grant_front(woken) != nullptr) {
      }
    }
    detail::wait_queue::wake_all(woken);
  }

 private:
  // Queues, unlocks the mutex, suspends. Resumes without the lock, except when it did not suspend
  // (a pending cancellation): then the guard still holds it.
  class notified_awaiter : private detail::queued_wait {
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
      if (prepare(self, detail::wait_kind::condition_variable_wait))
        return false;  // a pending cancellation: keep the lock, throw
      mutex* held = nullptr;
      {
        detail::queue_lock_guard lock(queue_->lock);
        if (cancelled_before_queued()) return false;
        held = guard_->release();
        queue_->push_back(&node_);
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
    condition_variable* cv_;
    mutex::guard* guard_;
  };

  detail::wait_queue queue_;
};

inline task<void> condition_variable::wait(mutex::guard& guard) {
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
    if (root != nullptr && root->take_pending_cancel()) {
      notify_one();
      throw detail::cancellation_of(root);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace weft
