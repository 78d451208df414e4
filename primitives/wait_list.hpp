// primitives/wait_list.hpp (private): the operations of a detail::wait_queue, for the primitives'
// .cpp files. The queue's layout and its node states are in <weft/primitives/detail/wait_queue.hpp>
// (awaiters embed the node); what is done with them under the lock is here, out of the installed
// headers.
//
// Every function except wake_all requires the queue's lock (queue_lock_guard). wake_all runs
// after the lock is dropped: a waiter may run, and its node vanish, as soon as it is woken.
#pragma once

#include <cstddef>

#include <weft/primitives/detail/wait_queue.hpp>

namespace weft::detail {

class queue_lock_guard {
 public:
  explicit queue_lock_guard(const wait_queue& queue) noexcept : lock_(queue.lock) { lock_.lock(); }
  ~queue_lock_guard() { lock_.unlock(); }
  queue_lock_guard(const queue_lock_guard&) = delete;
  queue_lock_guard& operator=(const queue_lock_guard&) = delete;

 private:
  spinlock& lock_;
};

inline bool queue_empty(const wait_queue& queue) noexcept { return queue.waiters.empty(); }

// Links `node` at the tail (the usual place) and marks it queued and linked by its owner.
inline void push_back(wait_queue& queue, wait_node* node) noexcept {
  ++queue.size;
  node->linked_by_owner = true;
  node->state = node_state::queued;
  queue.waiters.push_back(node);
}

// Links `node` at the head (a mutex waiter that was first in line and must wait again).
inline void push_front(wait_queue& queue, wait_node* node) noexcept {
  ++queue.size;
  node->linked_by_owner = true;
  node->state = node_state::queued;
  queue.waiters.push_front(node);
}

// Unlinks a linked `node` (its state is the caller's to set).
inline void remove(wait_queue& queue, wait_node* node) noexcept {
  --queue.size;
  queue.waiters.remove(node);
}

// Unlinks the first waiter, marks it granted and chains it onto `woken` (through `links.next`,
// which the list no longer reads once the node is unlinked: intrusive_list.hpp), for a wake_all
// after the lock is dropped. Null if the queue is empty.
inline wait_node* grant_front(wait_queue& queue, wait_node*& woken) noexcept {
  wait_node* node = queue.waiters.front();
  if (node == nullptr) return nullptr;
  remove(queue, node);
  node->state = node_state::granted;
  node->links.next = woken;
  woken = node;
  return node;
}

// Wakes a chain built by grant_front, without the lock, in grant (FIFO) order
// (primitives/wait_queue.cpp).
void wake_all(wait_node* woken) noexcept;

}  // namespace weft::detail
