// weft/primitives/mutex.hpp: weft::mutex, Python's asyncio.Lock.
//
//   weft::mutex m;
//   {
//     auto guard = co_await m.lock();   // suspends the task, not the thread, while m is held
//     ++shared_counter;
//   }                                   // unlocked here (or earlier with guard.unlock())
//   if (auto guard = m.try_lock()) { ... }   // never waits
//
// A mutex for tasks: waiting for it suspends the coroutine and the worker runs other tasks. It is
// not reentrant, and a guard may be released on another thread than the one that locked (a task
// moves between workers).
//
// Fairness: strictly FIFO. unlock() with waiters hands the lock to the first one directly (the
// mutex stays locked across the hand-over), so no later lock() or try_lock() can barge in; a waiter
// is overtaken only by nobody.
//
// Costs: an uncontended lock() is one CAS and does not suspend; an uncontended unlock is one CAS.
// The waiter node lives in the awaiter (the coroutine frame); nothing allocates. The slow paths
// take a spinlock for a few pointer moves.
//
// Cancellation: `co_await m.lock()` is a cancellation point when it has to wait. A task cancelled
// before it queues or while queued leaves with cancelled_error without the lock, and the waiters
// behind it move up. A task cancelled after unlock() granted it the lock but before it resumed
// passes the lock on to the next waiter (reliability rule 3) and throws cancelled_error: a
// cancelled lock() never returns a guard and never keeps the lock. An uncontended lock() does not
// suspend and does not deliver a pending cancellation (asyncio's Lock.acquire returns without
// yielding as well); the task sees it at its next suspension point.
//
// State word `state_`: 0 unlocked; 1 locked, no waiter queued; 2 locked, waiters may be queued.
// Invariant: waiters are queued only while the state is 2, and the state leaves 2 only under the
// queue's lock, by unlock(), which then hands the lock over (staying locked) or finds the queue
// empty and unlocks. A fast-path CAS 1 -> 0 therefore never strands a waiter: the waiter's
// registration moves 1 -> 2 under the queue's lock before it links itself, and the owner's CAS
// fails once the state is 2.
#pragma once

#include <atomic>
#include <coroutine>
#include <optional>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>

namespace weft {

class mutex {
 public:
  class guard;
  class lock_awaiter;

  mutex() = default;
  // Requires: unlocked, and no task waits.
  ~mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // Waits until the lock is free and this task holds it; returns the guard that unlocks it.
  [[nodiscard]] lock_awaiter lock() noexcept;

  // Takes the lock if it is free at once (never while waiters are queued: they come first).
  [[nodiscard]] std::optional<guard> try_lock() noexcept;

  // True while some task (or thread) holds the lock. A snapshot.
  [[nodiscard]] bool locked() const noexcept {
    return state_.load(std::memory_order_relaxed) != unlocked;
  }

 private:
  friend class guard;
  friend class lock_awaiter;
  friend class condition_variable;

  static constexpr int unlocked = 0;
  static constexpr int locked_alone = 1;
  static constexpr int locked_contended = 2;

  bool try_acquire() noexcept {
    int expected = unlocked;
    // Ordering: acquire pairs with the release of the unlock that freed the lock, so the previous
    // critical section happens before this one.
    return state_.compare_exchange_strong(expected, locked_alone, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    int expected = locked_alone;
    // Ordering: release publishes this critical section to the next owner's acquire CAS.
    if (state_.compare_exchange_strong(expected, unlocked, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
    detail::wait_node* woken = nullptr;
    {
      detail::queue_lock_guard lock(queue_.lock);
      if (queue_.grant_front(woken) == nullptr) {
        // Everybody who queued was cancelled. Ordering: release, as above.
        state_.store(unlocked, std::memory_order_release);
      } else if (queue_.empty()) {
        // Handed over; the new owner's unlock may take the fast path again. The new owner reads
        // this critical section through the wake-up (run-queue release/acquire).
        state_.store(locked_alone, std::memory_order_relaxed);
      }
    }
    detail::wait_queue::wake_all(woken);
  }

  std::atomic<int> state_{unlocked};
  detail::wait_queue queue_;
};

// Holds the lock; unlocks on destruction. Move-only; a moved-from guard holds nothing.
class mutex::guard {
 public:
  guard() noexcept = default;
  guard(guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
  guard& operator=(guard&& other) noexcept {
    if (this != &other) {
      unlock();
      mutex_ = std::exchange(other.mutex_, nullptr);
    }
    return *this;
  }
  ~guard() { unlock(); }

  // Unlocks now (hands the lock to the first waiter, if any). Does nothing if nothing is held.
  void unlock() noexcept {
    if (mutex_ != nullptr) std::exchange(mutex_, nullptr)->unlock();
  }
  [[nodiscard]] bool owns_lock() const noexcept { return mutex_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }
  // The mutex held, or null.
  [[nodiscard]] mutex* get_mutex() const noexcept { return mutex_; }

 private:
  friend class mutex;
  friend class mutex::lock_awaiter;
  friend class condition_variable;
  explicit guard(mutex* m) noexcept : mutex_(m) {}
  // Lets go without unlocking (condition_variable takes over the unlock).
  mutex* release() noexcept { return std::exchange(mutex_, nullptr); }

  mutex* mutex_ = nullptr;
};

// The awaiter of mutex::lock(). A cancellation point while it waits (see the file comment).
class [[nodiscard]] mutex::lock_awaiter : private detail::queued_wait {
 public:
  explicit lock_awaiter(mutex& m) noexcept : queued_wait(&m.queue_), mutex_(&m) {}
  // `cancellable` false: not a cancellation point (condition_variable relocking after a wait,
  // which must come back holding the lock whatever happens).
  lock_awaiter(mutex& m, bool cancellable) noexcept
      : queued_wait(&m.queue_), mutex_(&m), cancellable_(cancellable) {}
  lock_awaiter(const lock_awaiter&) = delete;
  lock_awaiter& operator=(const lock_awaiter&) = delete;

  // The fast path: one CAS, no suspension.
  bool await_ready() noexcept {
    if (!mutex_->try_acquire()) return false;
    node_.state = detail::node_state::granted;
    return true;
  }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    if (cancellable_) {
      if (prepare(self)) return false;  // a pending cancellation: await_resume throws
    } else {
      prepare_uncancellable(self);
    }
    detail::queue_lock_guard lock(queue_->lock);
    if (cancelled_before_queued()) return false;
    int state = mutex_->state_.load(std::memory_order_relaxed);
    for (;;) {
      if (state == unlocked) {
        // Freed meanwhile: take it here (no waiter can be queued: they need state 2).
        // Ordering: acquire, as in try_acquire.
        if (mutex_->state_.compare_exchange_weak(state, locked_alone, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
          node_.state = detail::node_state::granted;
          return false;
        }
      } else if (state == locked_alone) {
        // Tell the owner's unlock to look at the queue. Relaxed: the queue's lock orders the
        // queue itself; the owner's failing CAS sends it to that lock.
        if (mutex_->state_.compare_exchange_weak(state, locked_contended,
                                                 std::memory_order_relaxed)) {
          break;
        }
      } else {
        break;
      }
    }
    queue_->push_back(&node_);
    // Safety: from the moment the lock guard releases the queue, an unlock can grant the node and
    // resume the task elsewhere; nothing below touches *this.
    return true;
  }

  guard await_resume() {
    if (node_.state != detail::node_state::granted) {
      finish();                 // withdraws the hook; throws the pending cancellation
      throw cancelled_error();  // unlinked by a cancellation whose request was taken back
    }
    try {
      finish();
    } catch (...) {
      mutex_->unlock();  // granted, but cancelled before it resumed: pass the lock on
      throw;
    }
    return guard(mutex_);
  }

 private:
  mutex* mutex_;
  bool cancellable_ = true;
};

inline mutex::lock_awaiter mutex::lock() noexcept { return lock_awaiter(*this); }

inline std::optional<mutex::guard> mutex::try_lock() noexcept {
  if (!try_acquire()) return std::nullopt;
  return guard(this);
}

using mutex_guard = mutex::guard;

}  // namespace weft
