// weft/primitives/detail/wait_queue.hpp: the FIFO of suspended waiters that mutex, semaphore and
// event share, and the cancellable awaiter base that queues into it.
//
// A waiter is a `wait_node` inside its awaiter, hence inside the waiting coroutine's frame:
// queueing allocates nothing. The queue is an intrusive doubly linked list guarded by a small
// spinlock, held only for a few pointer moves (never across a wake-up or user code).
//
// A node moves through these states, each change made under the queue's lock:
//
//   idle       constructed; not queued
//   queued     linked into the list; the coroutine is suspended (or about to be)
//   granted    unlinked by a releaser that handed it the lock / a permit / the event; the releaser
//              wakes the coroutine after dropping the queue's lock
//   woken      (mutex only) unlinked by an unlock that freed the lock and wakes the waiter to take
//              it; like granted, a canceller leaves it to the waiter
//   cancelled  unlinked by a cancellation (which wakes the coroutine), or marked before it was ever
//              queued, so that the registration refuses and the awaiter does not suspend
//
// Invariant: exactly one party wakes a suspended waiter: the releaser that moved it from queued to
// granted, or the canceller that moved it from queued to cancelled. Both decide under the lock, so
// they cannot both win. A canceller that finds the node granted does nothing: the grant stands, and
// the awaiter's await_resume decides what to do with it (the primitives pass it on and throw).
//
// Ordering: every state change happens under the spinlock (acquire/release), and the coroutine
// reads its node only after being resumed, which synchronizes with the wake-up through the run
// queues (the injector and the deques publish with release and take with acquire). The waiter
// thus sees the state and the primitive's data as the party that woke it left them.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/spinlock.hpp>
#include <weft/scheduler/detail/task_header.hpp>

namespace weft::detail {

class queue_lock_guard {
 public:
  explicit queue_lock_guard(spinlock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~queue_lock_guard() { lock_.unlock(); }
  queue_lock_guard(const queue_lock_guard&) = delete;
  queue_lock_guard& operator=(const queue_lock_guard&) = delete;

 private:
  spinlock& lock_;
};

enum class node_state : unsigned char { idle, queued, granted, woken, cancelled };

struct wait_node {
  wait_node* prev = nullptr;
  wait_node* next = nullptr;
  std::coroutine_handle<> waiter;
  runtime_core* runtime = nullptr;  // where to wake the waiter (recorded at suspend time)
  node_state state = node_state::idle;
  // Owned by the waiting task (never written by others): set when the node is linked, cleared
  // when the awaiter settles (finish). Still set in the destructor means the frame is destroyed
  // while it waits (runtime shutdown), and the awaiter must leave the queue itself.
  bool linked_by_owner = false;
};

// The list plus its lock. All members require the lock, except wake_all.
class wait_queue {
 public:
  spinlock lock;

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  // How many nodes are linked (barrier counts its arrivals with it).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  void push_back(wait_node* node) noexcept {
    ++size_;
    node->linked_by_owner = true;
    node->state = node_state::queued;
    node->next = nullptr;
    node->prev = tail_;
    if (tail_ != nullptr) {
      tail_->next = node;
    } else {
      head_ = node;
    }
    tail_ = node;
  }

  // Links `node` at the head (a mutex waiter that was first in line and must wait again).
  void push_front(wait_node* node) noexcept {
    ++size_;
    node->linked_by_owner = true;
    node->state = node_state::queued;
    node->prev = nullptr;
    node->next = head_;
    if (head_ != nullptr) {
      head_->prev = node;
    } else {
      tail_ = node;
    }
    head_ = node;
  }

  void remove(wait_node* node) noexcept {
    --size_;
    if (node->prev != nullptr) {
      node->prev->next = node->next;
    } else {
      head_ = node->next;
    }
    if (node->next != nullptr) {
      node->next->prev = node->prev;
    } else {
      tail_ = node->prev;
    }
    node->prev = node->next = nullptr;
  }

  // Unlinks the first waiter, marks it granted and chains it onto `woken` (through `next`), for a
  // wake_all after the lock is dropped. Null if the queue is empty.
  wait_node* grant_front(wait_node*& woken) noexcept {
    wait_node* node = head_;
    if (node == nullptr) return nullptr;
    remove(node);
    node->state = node_state::granted;
    node->next = woken;
    woken = node;
    return node;
  }

  // Wakes a chain built by grant_front, without the lock. The chain is in reverse grant order;
  // each waiter may run (and its node vanish) as soon as it is woken, so `next` is read first.
  static void wake_all(wait_node* woken) noexcept {
    // Reverse first so that waiters are scheduled in grant (FIFO) order.
    wait_node* ordered = nullptr;
    while (woken != nullptr) {
      wait_node* next = woken->next;
      woken->next = ordered;
      ordered = woken;
      woken = next;
    }
    while (ordered != nullptr) {
      wait_node* next = ordered->next;
      runtime_core* rt = ordered->runtime;
      std::coroutine_handle<> waiter = ordered->waiter;
      wake(rt, waiter);  // *ordered may be gone from here on
      ordered = next;
    }
  }

 private:
  wait_node* head_ = nullptr;
  wait_node* tail_ = nullptr;
  std::size_t size_ = 0;
};

// The base of the primitives' awaiters: a cancellable wait whose registration is a wait_node in a
// wait_queue. The derived awaiter decides, under the queue's lock, whether it is granted at once
// or queues (in its await_suspend), and reads `node_.state` in await_resume. `Node` is wait_node or
// a type derived from it that carries what a grant hands over (barrier: the arrival index); a
// primitive's queue holds nodes of one type only, so its releaser may cast back to `Node`.
template <class Node>
class basic_queued_wait : public cancellable_wait {
 protected:
  // The derived awaiters name their base `queued_wait` in their constructors.
  using queued_wait = basic_queued_wait;

  explicit basic_queued_wait(wait_queue* queue) noexcept : queue_(queue) {
    on_cancel = &cancel_wait;
  }

  // The frame is destroyed while the task waits here (runtime shutdown destroys unfinished
  // tasks; issue 10, bug 1): leave the queue, so no list keeps a node of freed memory. A grant
  // made to the node and never resumed with is passed on by the derived awaiter's destructor
  // (leave_queue tells it what it held); this one covers awaiters that hold nothing to pass on.
  // The shutdown sweep has usually unlinked the node already through on_cancel, while every
  // primitive was still alive; then this only reads the state.
  ~basic_queued_wait() { (void)leave_queue(); }

  // For destructors: if the awaiter never settled, unlinks a queued node and returns the state
  // the node was left in (granted or woken: the derived awaiter passes that on); otherwise
  // returns idle. Called at most once with effect.
  node_state leave_queue() noexcept {
    if (!node_.linked_by_owner) return node_state::idle;
    node_.linked_by_owner = false;
    queue_lock_guard lock(queue_->lock);
    const node_state found = node_.state;
    if (found == node_state::queued) {
      queue_->remove(&node_);
      node_.state = node_state::cancelled;
    }
    return found;
  }

  // await_resume's finish() and abandon(), which also record that the awaiter settled (see
  // leave_queue).
  void finish() {
    node_.linked_by_owner = false;
    cancellable_wait::finish();
  }
  void abandon() noexcept {
    node_.linked_by_owner = false;
    cancellable_wait::abandon();
  }

  // begin() for a coroutine handle; prepares the node. True: a cancellation is pending, do not
  // suspend (await_resume's finish() throws). `what` names the wait for runtime::dump.
  template <class Promise>
  bool prepare(std::coroutine_handle<Promise> self, wait_kind what = wait_kind::queue) {
    require_worker("a weft primitive's wait");
    node_.waiter = self;
    node_.runtime = current_runtime_core();
    return begin(root_of(self), what);
  }

  // The same without publishing a cancellation hook: the wait is not a cancellation point.
  template <class Promise>
  void prepare_uncancellable(std::coroutine_handle<Promise> self) {
    require_worker("a weft primitive's wait");
    node_.waiter = self;
    node_.runtime = current_runtime_core();
  }

  // Under the queue's lock: true if a cancellation already marked the node (the registration must
  // refuse and await_suspend return false).
  [[nodiscard]] bool cancelled_before_queued() const noexcept {
    return node_.state == node_state::cancelled;
  }

  static void cancel_wait(cancel_hook* hook) noexcept {
    auto* self = static_cast<basic_queued_wait*>(static_cast<cancellable_wait*>(hook));
    wait_queue* queue = self->queue_;
    bool wake_it = false;
    {
      queue_lock_guard lock(queue->lock);
      switch (self->node_.state) {
        case node_state::queued:
          queue->remove(&self->node_);
          self->node_.state = node_state::cancelled;
          wake_it = true;
          break;
        case node_state::idle:
          self->node_.state = node_state::cancelled;  // the registration will refuse
          break;
        case node_state::granted:    // the grant stands; the releaser wakes the waiter
        case node_state::woken:      // the same for a mutex's wake-up
        case node_state::cancelled:  // already settled
          break;
      }
    }
    // The awaiter is alive here: finish() waits for this call to return before it goes on.
    if (wake_it) wake(self->node_.runtime, self->node_.waiter);
  }

  wait_queue* queue_;
  Node node_;
};

using queued_wait = basic_queued_wait<wait_node>;

}  // namespace weft::detail
