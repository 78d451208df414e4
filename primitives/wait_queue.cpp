// primitives/wait_queue.cpp: the out-of-line part of the wait queue that mutex, semaphore, event,
// barrier and condition_variable share (the protocol is in
// <weft/primitives/detail/wait_queue.hpp>; the list operations in wait_list.hpp).
#include <weft/primitives/detail/wait_queue.hpp>

#include "wait_list.hpp"

namespace weft::detail {

void wake_all(wait_node* woken) noexcept {
  // The chain is in reverse grant order: reverse it first so that waiters are scheduled FIFO.
  wait_node* ordered = nullptr;
  while (woken != nullptr) {
    wait_node* next = woken->links.next;
    woken->links.next = ordered;
    ordered = woken;
    woken = next;
  }
  while (ordered != nullptr) {
    // `next`, the runtime and the handle are read first: *ordered may be gone once woken.
    wait_node* next = ordered->links.next;
    runtime_core* rt = ordered->runtime;
    std::coroutine_handle<> waiter = ordered->waiter;
    wake(rt, waiter);
    ordered = next;
  }
}

bool enqueue_or_grant(wait_queue* queue, wait_node* node, queue_decision decide, void* awaiter) {
  queue_lock_guard lock(*queue);
  // A cancellation that ran before the registration marked the node: refuse (await_resume
  // throws). Decided under the lock, as on_cancel's marking was.
  if (node->state == node_state::cancelled) return false;
  return decide(awaiter);
}

node_state leave_wait_queue(wait_queue* queue, wait_node* node) noexcept {
  queue_lock_guard lock(*queue);
  const node_state found = node->state;
  if (found == node_state::queued) {
    remove(*queue, node);
    node->state = node_state::cancelled;
  }
  return found;
}

void cancel_queued_node(wait_queue* queue, wait_node* node) noexcept {
  bool wake_it = false;
  {
    queue_lock_guard lock(*queue);
    switch (node->state) {
      case node_state::queued:
        remove(*queue, node);
        node->state = node_state::cancelled;
        wake_it = true;
        break;
      case node_state::idle:
        node->state = node_state::cancelled;  // the registration will refuse
        break;
      case node_state::granted:    // the grant stands; the releaser wakes the waiter
      case node_state::woken:      // the same for a mutex's wake-up
      case node_state::cancelled:  // already settled
        break;
    }
  }
  // The awaiter (and its node) is alive here: finish() waits for on_cancel to return.
  if (wake_it) wake(node->runtime, node->waiter);
}

}  // namespace weft::detail
