// primitives/mutex.cpp: weft::mutex's slow paths (the protocol and its invariants are in
// <weft/primitives/mutex.hpp>): the unlock that wakes or hands over, and lock_slow, the queued
// turns of a lock() that has to wait. The fast paths (one CAS each) stay inline in the header.
#include <weft/primitives/mutex.hpp>

#include <chrono>

#include "wait_list.hpp"

namespace weft {

void mutex::unlock_slow() noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    // We hold the lock and the queue's lock: the word is frozen (file comment).
    unsigned state = state_.load(std::memory_order_relaxed);
    if ((state & handoff_bit) != 0) {
      if (detail::grant_front(queue_, woken) == nullptr) {
        // Everybody who queued was cancelled. Ordering: release, as in unlock().
        state_.store(state & ~(locked_bit | queued_bit | handoff_bit), std::memory_order_release);
      } else if (detail::queue_empty(queue_)) {
        // Handed over, stays locked; the new owner reads this critical section through the
        // wake-up (run-queue release/acquire), so relaxed suffices.
        state_.store(state & ~(queued_bit | handoff_bit), std::memory_order_relaxed);
      }
    } else if ((state & woken_bit) != 0 || (state & queued_bit) == 0) {
      // Changed since the check. Ordering: release, as in unlock(): the next owner's acquire
      // CAS sees this critical section.
      state_.store(state & ~locked_bit, std::memory_order_release);
    } else {
      unsigned next = state & ~locked_bit;
      if (wake_front(woken)) next |= woken_bit;
      if (detail::queue_empty(queue_)) next &= ~queued_bit;
      // Ordering: release, as in unlock(); the woken waiter's acquire CAS reads it.
      state_.store(next, std::memory_order_release);
    }
  }
  detail::wake_all(woken);
}

// Under the queue's lock: unlinks the first waiter as woken (to take the lock when it runs, not
// granted it). False if the queue is empty.
bool mutex::wake_front(detail::wait_node*& woken) noexcept {
  detail::wait_node* node = detail::grant_front(queue_, woken);
  if (node == nullptr) return false;
  node->state = detail::node_state::woken;
  return true;
}

// A woken waiter that will not take the lock (it was cancelled): gives up woken_bit and, if the
// lock is free and waiters are queued, wakes the next one in its place.
void mutex::pass_wake_on() noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    // An RMW: locked_bit may change concurrently (fast paths). If the lock is held, its
    // holder's unlock now sees queued_bit without woken_bit and wakes the next waiter itself.
    const unsigned before = state_.fetch_and(~woken_bit, std::memory_order_relaxed);
    if ((before & locked_bit) == 0 && wake_front(woken)) {
      // If the queue emptied, leave queued_bit: the next unlock clears it on its slow path.
      state_.fetch_or(woken_bit, std::memory_order_relaxed);
    }
  }
  detail::wake_all(woken);
}

// Under the queue's lock, for the waiter granted the lock in hand-off mode: back to normal mode
// if it waited less than the threshold (Go's rule). The caller holds the lock: plain store.
void mutex::leave_handoff_mode() noexcept {
  detail::queue_lock_guard lock(queue_);
  state_.store(state_.load(std::memory_order_relaxed) & ~handoff_bit, std::memory_order_relaxed);
}

// One turn of lock_slow: takes the lock if it is free (and the mutex is not in hand-off mode), or
// queues and suspends. await_resume says how the turn ended.
class mutex::turn_awaiter : private detail::queued_wait {
 public:
  enum class outcome { took, handed_over, woken };

  // `retry`: this waiter was woken and lost the lock to a barging task; it requeues at the head.
  // `starving`: it has waited longer than starvation_threshold.
  turn_awaiter(mutex& m, bool cancellable, bool retry, bool starving) noexcept
      : queued_wait(&m.queue_),
        mutex_(&m),
        cancellable_(cancellable),
        retry_(retry),
        starving_(starving),
        holds_wake_(retry) {}
  turn_awaiter(const turn_awaiter&) = delete;
  turn_awaiter& operator=(const turn_awaiter&) = delete;
  // Destroyed while waiting (runtime shutdown): a lock handed over is unlocked, a wake-up to take
  // it is passed to the next waiter, as await_resume does for a cancellation after either.
  ~turn_awaiter() {
    switch (leave_queue()) {
      case detail::node_state::granted:
        mutex_->unlock();
        break;
      case detail::node_state::woken:
        mutex_->pass_wake_on();
        break;
      default:
        break;
    }
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    return suspend_in_queue(self, detail::wait_kind::mutex_lock, &decide, this, cancellable_);
  }

  outcome await_resume() {
    switch (node_.state) {
      case detail::node_state::granted:  // took it in await_suspend, or handed it in hand-off mode
        try {
          finish();
        } catch (...) {
          mutex_->unlock();  // granted, but cancelled before it resumed: pass the lock on
          throw;
        }
        return took_ ? outcome::took : outcome::handed_over;
      case detail::node_state::woken:
        try {
          finish();
        } catch (...) {
          mutex_->pass_wake_on();  // woken, but cancelled before it tried: wake the next one
          throw;
        }
        return outcome::woken;
      default:
        // Cancelled before it queued (a retrying waiter then still holds woken_bit) or while
        // queued (it gave woken_bit up when it requeued).
        if (holds_wake_) mutex_->pass_wake_on();
        finish();                 // withdraws the hook; throws the pending cancellation
        throw cancelled_error();  // unlinked by a cancellation whose request was taken back
    }
  }

 private:
  // Under the queue's lock (suspend_in_queue's decision): takes the lock if it is free and the
  // mutex is not in hand-off mode (false: do not suspend), or marks the mutex contended and
  // links the node (true: suspend).
  static bool decide(void* awaiter) noexcept {
    return static_cast<turn_awaiter*>(awaiter)->take_or_queue();
  }
  bool take_or_queue() noexcept {
    const unsigned give_up = retry_ ? woken_bit : 0U;
    unsigned state = mutex_->state_.load(std::memory_order_relaxed);
    for (;;) {
      if ((state & (locked_bit | handoff_bit)) == 0) {
        // Free: take it. Ordering: acquire, as in try_acquire.
        if (mutex_->state_.compare_exchange_weak(state, (state | locked_bit) & ~give_up,
                                                 std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
          node_.state = detail::node_state::granted;
          took_ = true;
          holds_wake_ = false;
          return false;
        }
        continue;
      }
      // Held: queue. Relaxed: the queue's lock orders the queue itself; the holder's unlock CAS
      // fails on the changed word and sends it to that lock.
      unsigned next = (state | queued_bit) & ~give_up;
      if (retry_ && starving_) next |= handoff_bit;
      if (mutex_->state_.compare_exchange_weak(state, next, std::memory_order_relaxed)) break;
    }
    holds_wake_ = false;
    if (retry_) {
      detail::push_front(*queue_, &node_);  // it was first in line before it was woken
    } else {
      detail::push_back(*queue_, &node_);
    }
    return true;
  }

  mutex* mutex_;
  bool cancellable_;
  bool retry_;
  bool starving_;
  bool took_ = false;
  bool holds_wake_;  // woken_bit is this waiter's to clear (a retry that has not tried yet)
};

task<void> mutex::lock_slow(bool cancellable) {
  const auto since = std::chrono::steady_clock::now();
  bool retry = false;
  bool starving = false;
  for (;;) {
    switch (co_await turn_awaiter(*this, cancellable, retry, starving)) {
      case turn_awaiter::outcome::took:
        co_return;
      case turn_awaiter::outcome::handed_over:
        // Only hand-off mode hands over. A waiter served quickly ends it (Go's rule).
        if (std::chrono::steady_clock::now() - since < starvation_threshold) leave_handoff_mode();
        co_return;
      case turn_awaiter::outcome::woken:
        // Try again, from the head of the queue if the lock was taken meanwhile.
        retry = true;
        starving = std::chrono::steady_clock::now() - since > starvation_threshold;
        break;
    }
  }
}

}  // namespace weft
