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
// Fairness: waiters are served strictly in FIFO order, with a bound on how long a waiter can be
// overtaken by tasks that never waited (the policy of Go's sync.Mutex and Rust's parking_lot):
//
// - Normal mode. unlock() with waiters frees the lock and wakes the first waiter, which takes it
//   when it runs. A task that calls lock() or try_lock() meanwhile and finds the lock free takes
//   it ("barging"); the woken waiter then goes back to the head of the queue, ahead of every
//   other waiter, and is woken again by the next unlock(). Waiters never overtake each other.
// - Hand-off mode. A woken waiter that finds the lock taken after it has waited for more than
//   `mutex::starvation_threshold` (1 ms) switches the mutex to hand-off mode: unlock() hands the
//   lock to the first waiter directly (the mutex stays locked across the hand-over) and nobody
//   barges: lock() and try_lock() queue behind the waiters or fail. The mutex returns to normal
//   mode when the queue empties, or when a waiter that received the lock had waited less than
//   the threshold.
//
// Why not hand every unlock to the first waiter, as asyncio does: with hand-off only, a task that
// locks in a loop must queue behind all the others on every iteration, so a contended mutex runs
// one task switch per acquisition (a lock convoy); bench/mutex measured 15-27 ns per lock+unlock
// for 64 tasks on 2 workers that way, against 6-8 ns for std::mutex, which barges, and 5.3 ns with
// barging here: the holder keeps its cache-warm run and waiters still go in order
// (docs/architecture.md, "Measurements"). Python's documented promise holds: among the tasks
// blocked in lock(), the one that proceeds is the one that started waiting first.
//
// Costs: an uncontended lock() is one CAS and does not suspend; an unlock is one CAS unless it
// must wake a waiter (then a spinlock for a few pointer moves, and the wake-up). A lock() that
// must wait runs a small coroutine (one frame from weft's recycling allocator) holding the waiter
// node; nothing else allocates.
//
// Cancellation: `co_await m.lock()` is a cancellation point when it has to wait. A task cancelled
// before it queues or while queued leaves with cancelled_error without the lock, and the waiters
// behind it move up. A task cancelled after it was woken or handed the lock, but before it
// resumed, passes the wake-up or the lock on to the next waiter (reliability rule 3) and throws
// cancelled_error: a cancelled lock() never returns a guard and never keeps the lock. An
// uncontended lock() does not suspend and does not deliver a pending cancellation (asyncio's
// Lock.acquire returns without yielding as well); the task sees it at its next suspension point.
//
// State word `state_` (bits):
//   locked_bit   the lock is held
//   queued_bit   the queue may hold waiters (set under the queue's lock when one queues, cleared
//                under it when an unlock finds the queue empty)
//   woken_bit    a waiter was unlinked and woken to take the lock and has not tried yet; at most
//                one at a time, so unlock() wakes nobody else while it is set
//   handoff_bit  hand-off mode (above); set only while locked_bit is set
//
// Invariant (no stranded waiter): while waiters are queued and the lock is free, woken_bit is
// set, i.e. a woken waiter is on its way to take the lock or to requeue and be woken again.
// - The unlock fast path (one CAS clearing locked_bit) is taken only when queued_bit is clear or
//   woken_bit is set, and never in hand-off mode; otherwise unlock() takes the queue's lock and
//   either wakes the first waiter (setting woken_bit in the same store that frees the lock) or
//   hands the lock over.
// - A woken waiter clears woken_bit in the CAS that either takes the free lock or requeues it at
//   the head because the lock is held; in the latter case the holder's unlock sees queued_bit
//   without woken_bit and wakes it. The CAS compares the whole word, so an unlock that frees the
//   lock between the waiter's load and its CAS makes the CAS fail and the waiter take the lock.
// - A woken waiter that is cancelled instead clears woken_bit and, if the lock is free, wakes
//   the next waiter (pass_wake_on).
// queued_bit, woken_bit and handoff_bit change only under the queue's lock; locked_bit changes
// under it or by the fast paths. A thread that holds both the lock and the queue's lock therefore
// sees a word nobody else can change, and may store it plainly.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <optional>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class mutex {
 public:
  class guard;
  class lock_awaiter;

  // How long a waiter may be overtaken before the mutex switches to hand-off mode.
  static constexpr std::chrono::microseconds starvation_threshold{1000};

  mutex() = default;
  // Requires: unlocked, and no task waits.
  ~mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // Waits until the lock is free and this task holds it; returns the guard that unlocks it.
  [[nodiscard]] lock_awaiter lock() noexcept;

  // Takes the lock if it is free at once. Never waits; fails in hand-off mode (waiters first).
  [[nodiscard]] std::optional<guard> try_lock() noexcept;

  // True while some task (or thread) holds the lock. A snapshot.
  [[nodiscard]] bool locked() const noexcept {
    return (state_.load(std::memory_order_relaxed) & locked_bit) != 0;
  }

 private:
  friend class guard;
  friend class lock_awaiter;
  friend class condition_variable;
  class turn_awaiter;

  static constexpr unsigned locked_bit = 1;
  static constexpr unsigned queued_bit = 2;
  static constexpr unsigned woken_bit = 4;
  static constexpr unsigned handoff_bit = 8;

  // The fast path of lock() and try_lock().
  bool try_acquire() noexcept {
    unsigned state = state_.load(std::memory_order_relaxed);
    while ((state & (locked_bit | handoff_bit)) == 0) {
      // Ordering: acquire pairs with the release of the unlock that freed the lock, so the
      // previous critical section happens before this one.
      if (state_.compare_exchange_weak(state, state | locked_bit, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  void unlock() noexcept {
    unsigned state = state_.load(std::memory_order_relaxed);
    // Nobody to wake: no waiter queued, or one already woken and on its way.
    while ((state & handoff_bit) == 0 && ((state & queued_bit) == 0 || (state & woken_bit) != 0)) {
      // Ordering: release publishes this critical section to the next owner's acquire.
      if (state_.compare_exchange_weak(state, state & ~locked_bit, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
    unlock_slow();
  }

  // The paths that take the queue's lock (primitives/mutex.cpp): an unlock that wakes or hands
  // over, and its helpers for the waiters (turn_awaiter, defined there too).
  WEFT_API void unlock_slow() noexcept;
  bool wake_front(detail::wait_node*& woken) noexcept;
  void pass_wake_on() noexcept;
  void leave_handoff_mode() noexcept;

  // The slow path of lock(): queue, wait, and when woken try again from the head of the queue.
  WEFT_API task<void> lock_slow(bool cancellable);

  std::atomic<unsigned> state_{0};
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

  // Unlocks now (wakes or hands the lock to the first waiter, if any). Does nothing if nothing is
  // held.
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
class [[nodiscard]] mutex::lock_awaiter {
 public:
  explicit lock_awaiter(mutex& m) noexcept : mutex_(&m) {}
  // `cancellable` false: not a cancellation point (condition_variable relocking after a wait,
  // which must come back holding the lock whatever happens).
  lock_awaiter(mutex& m, bool cancellable) noexcept : mutex_(&m), cancellable_(cancellable) {}
  lock_awaiter(const lock_awaiter&) = delete;
  lock_awaiter& operator=(const lock_awaiter&) = delete;

  // The fast path: one CAS, no suspension.
  bool await_ready() noexcept { return mutex_->try_acquire(); }

  // The slow path: runs lock_slow as a child of the awaiting coroutine (symmetric transfer in and
  // out, so it belongs to the same task and its waits are that task's cancellation points).
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) {
    slow_.emplace(mutex_->lock_slow(cancellable_).release());
    return slow_->await_suspend(self);
  }

  guard await_resume() {
    if (slow_) slow_->await_resume();  // rethrows lock_slow's cancelled_error
    return guard(mutex_);
  }

 private:
  using slow_awaiter = decltype(std::declval<task<void>>().operator co_await());
  mutex* mutex_;
  bool cancellable_ = true;
  std::optional<slow_awaiter> slow_;
};

inline mutex::lock_awaiter mutex::lock() noexcept { return lock_awaiter(*this); }

inline std::optional<mutex::guard> mutex::try_lock() noexcept {
  if (!try_acquire()) return std::nullopt;
  return guard(this);
}

using mutex_guard = mutex::guard;

}  // namespace weft
