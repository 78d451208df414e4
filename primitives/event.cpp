// primitives/event.cpp: weft::event's paths that take the queue's lock (the protocol is in
// <weft/primitives/event.hpp>).
#include <weft/primitives/event.hpp>

#include "wait_list.hpp"

namespace weft {

void event::set() noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    // Ordering: release (under the lock too): a wait() that sees the flag by its lock-free load
    // (is_set's acquire) also sees what the setter did before set().
    set_.store(true, std::memory_order_release);
    while (detail::grant_front(queue_, woken) != nullptr) {
    }
  }
  detail::wake_all(woken);
}

void event::clear() noexcept {
  detail::queue_lock_guard lock(queue_);
  // Relaxed: under the queue's lock, which orders it against every waiter's check (below) and
  // every set(); a lock-free is_set() racing with it may see either value, as with any clear.
  set_.store(false, std::memory_order_relaxed);
}

bool event::wait_awaiter::grant_or_queue(void* self) noexcept {
  auto* awaiter = static_cast<wait_awaiter*>(self);
  // Relaxed: the queue's lock orders it against set(), which stores under the same lock; a waiter
  // that sees the flag down is queued before set() can take the queue.
  if (awaiter->event_->set_.load(std::memory_order_relaxed)) {
    awaiter->node_.state = detail::node_state::granted;
    return false;
  }
  detail::push_back(*awaiter->queue_, &awaiter->node_);
  return true;
}

}  // namespace weft
