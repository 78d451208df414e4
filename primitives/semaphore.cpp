// primitives/semaphore.cpp: weft::semaphore's paths that take the queue's lock or throw (the
// protocol and its invariants are in <weft/primitives/semaphore.hpp>). The fast paths (a permit
// taken or returned with one CAS while nobody waits) stay inline in the header.
#include <weft/primitives/semaphore.hpp>

#include <stdexcept>
#include <string>

#include "wait_list.hpp"

namespace weft {

void semaphore::release(std::size_t n) {
  if (n == 0) return;
  if (limit_ != unbounded) {
    // Only permits detached from permit objects may come back this way; taking them from
    // detached_ first (relaxed: see note_detached) means the count below stays within the limit
    // (the invariant at detached_), so add_permits cannot throw afterwards and nothing needs
    // undoing.
    std::size_t detached = detached_.load(std::memory_order_relaxed);
    do {
      if (n > detached) over_released(n, detached);
    } while (!detached_.compare_exchange_weak(detached, detached - n, std::memory_order_relaxed));
  } else if (n > max_count) {
    overflowed(n);  // (bounded: n <= detached_ <= limit_ <= max_count)
  }
  add_permits(n, false);
}

void semaphore::grant_waiters(std::size_t n, bool from_permit) noexcept(false) {
  constexpr auto max = static_cast<std::int64_t>(max_count);
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    std::size_t left = n;
    while (left > 0 && detail::grant_front(queue_, woken) != nullptr)
      --left;
    if (detail::queue_empty(queue_)) {
      // Nobody waits any more: the rest goes to the count. Not a plain store: another releaser
      // that also saw `contended` may have put its own rest there under this lock just before,
      // and fast-path acquires and releases may be changing it now (bug: a store lost permits
      // when waiters had been cancelled out of the queue and two releases raced here). Ordering:
      // release, as add_permits' CAS; the granted waiters read the releaser's work through the
      // wake-up.
      //
      // Overflow: if this call granted a waiter, the count was `contended` when the lock was
      // taken and nobody can change a contended count without this lock, so current is
      // `contended` here and left < n <= max. Only a call that granted nobody can find a
      // positive count (another releaser's rest) that overflows, and then throwing changes
      // nothing (the lock guard unlocks).
      std::int64_t current = count_.load(std::memory_order_relaxed);
      for (;;) {
        const std::int64_t base = current < 0 ? 0 : current;
        const auto rest = static_cast<std::int64_t>(left);
        std::int64_t next = base + (rest > max - base ? 0 : rest);
        if (rest > max - base) {
          if (!from_permit && woken == nullptr) overflowed(n);
          next = max;
        }
        // Ordering: release, so a task that takes one of these permits with its acquire RMW on
        // count_ sees what the releaser did before (the permit's hand-over); relaxed on failure,
        // since the retry only recomputes from the fresh value.
        if (count_.compare_exchange_weak(current, next, std::memory_order_release,
                                         std::memory_order_relaxed)) {
          break;
        }
      }
    }
  }
  detail::wake_all(woken);
}

void semaphore::over_released(std::size_t n, std::size_t detached) const {
  throw std::logic_error("weft::bounded_semaphore: releasing " + std::to_string(n) +
                         " permit(s) would exceed its limit of " + std::to_string(limit_) +
                         " (released more often than acquired: release() gives back only "
                         "permits taken with permit::detach(), and " +
                         std::to_string(detached) + " are out)");
}

void semaphore::overflowed(std::size_t n) const {
  throw std::logic_error("weft::semaphore: releasing " + std::to_string(n) +
                         " permit(s) would take the count beyond max_count (2^63 - 1)");
}

bool semaphore::acquire_awaiter::take_or_queue(void* self) noexcept {
  auto* awaiter = static_cast<acquire_awaiter*>(self);
  std::int64_t count = awaiter->semaphore_->count_.load(std::memory_order_relaxed);
  for (;;) {
    if (count > 0) {
      // Ordering: acquire, as in try_take.
      if (awaiter->semaphore_->count_.compare_exchange_weak(
              count, count - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        awaiter->node_.state = detail::node_state::granted;
        return false;
      }
    } else if (count == 0) {
      // Relaxed: the queue's lock orders the queue; a releaser's failing CAS sends it there.
      if (awaiter->semaphore_->count_.compare_exchange_weak(count, contended,
                                                            std::memory_order_relaxed)) {
        break;
      }
    } else {
      break;
    }
  }
  detail::push_back(*awaiter->queue_, &awaiter->node_);
  return true;
}

}  // namespace weft
