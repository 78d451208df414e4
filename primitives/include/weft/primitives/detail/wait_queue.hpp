// weft/primitives/detail/wait_queue.hpp: the FIFO of suspended waiters that mutex, semaphore,
// event, barrier and condition_variable share, and the cancellable awaiter base that queues into
// it, with the one suspend sequence they all follow (basic_queued_wait::suspend_in_queue).
//
// Only what an awaiter needs inline is here: the node and queue layouts (the node lives in the
// awaiter, the queue in the primitive) and the template that begins the wait. Everything done
// under the queue's lock is out of line: the list operations in primitives/wait_list.hpp (a
// private header), the registration, cancellation and shutdown paths in primitives/wait_queue.cpp,
// and each primitive's decision (grant at once or queue) in its own primitives/<part>.cpp.
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

#include <weft/scheduler/detail/intrusive_list.hpp>
#include <weft/scheduler/detail/spinlock.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::detail {

enum class node_state : unsigned char { idle, queued, granted, woken, cancelled };

struct wait_node {
  // In the queue's list while queued; after a grant, the link of wake_all's chain (wait_list.hpp).
  list_links<wait_node> links;
  std::coroutine_handle<> waiter;
  runtime_core* runtime = nullptr;  // where to wake the waiter (recorded at suspend time)
  node_state state = node_state::idle;
  // Owned by the waiting task (never written by others): set when the node is linked, cleared
  // when the awaiter settles (finish). Still set in the destructor means the frame is destroyed
  // while it waits (runtime shutdown), and the awaiter must leave the queue itself.
  bool linked_by_owner = false;
};

// The list plus its lock. Only the layout is here (a primitive embeds its queue, an awaiter its
// node); the operations, which require the lock, are the primitives' own: primitives/wait_list.hpp
// and the primitives' .cpp files.
struct wait_queue {
  mutable spinlock lock;
  intrusive_list<wait_node, &wait_node::links> waiters;  // FIFO; guarded by `lock`
  std::size_t size = 0;  // nodes linked (barrier counts its arrivals with it)
};

// Under the queue's lock (enqueue_or_grant's decision): grants the awaiter at once (false: do not
// suspend) or links its node into the queue (true: suspend). `awaiter` is the awaiter that asks.
using queue_decision = bool (*)(void* awaiter);

// The out-of-line part of basic_queued_wait (primitives/wait_queue.cpp).
// Takes the queue's lock; if a cancellation already marked `node`, returns false (the
// registration refuses, await_resume throws); otherwise returns decide(awaiter).
WEFT_API bool enqueue_or_grant(wait_queue* queue, wait_node* node, queue_decision decide,
                               void* awaiter);
// A frame destroyed while its awaiter waits: unlinks a queued `node` and returns the state it was
// left in (granted or woken: the caller passes that on).
WEFT_API node_state leave_wait_queue(wait_queue* queue, wait_node* node) noexcept;
// on_cancel: unlinks a queued `node` (and wakes its task) or marks an idle one so that the
// registration refuses; leaves a granted or woken node alone.
WEFT_API void cancel_queued_node(wait_queue* queue, wait_node* node) noexcept;

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
    return leave_wait_queue(queue_, &node_);
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

  // The suspend sequence of every queued awaiter (mutex, semaphore, event, barrier,
  // condition_variable), in one place: begin the wait (a cancellation point named `what` in
  // runtime::dump, unless `cancellable` is false), take the queue's lock, refuse if a cancellation
  // already marked the node, and then let `decide(this awaiter)`, still under the lock, either
  // grant the node at once (false: do not suspend) or link it into the queue (true: suspend).
  // Returns what await_suspend returns. Safety: once `decide` linked the node and the lock is
  // dropped, a releaser or a canceller may resume the task elsewhere and destroy *this; the
  // caller touches nothing of the awaiter after a true result (only its own locals).
  template <class Promise>
  bool suspend_in_queue(std::coroutine_handle<Promise> self, wait_kind what, queue_decision decide,
                        void* awaiter, bool cancellable = true) {
    if (cancellable) {
      if (prepare(self, what)) return false;  // a pending cancellation: await_resume throws
    } else {
      prepare_uncancellable(self);
    }
    return enqueue_or_grant(queue_, &node_, decide, awaiter);
  }

  static void cancel_wait(cancel_hook* hook) noexcept {
    auto* self = static_cast<basic_queued_wait*>(static_cast<cancellable_wait*>(hook));
    // The awaiter is alive throughout: finish() waits for this call to return before it goes on.
    cancel_queued_node(self->queue_, &self->node_);
  }

  wait_queue* queue_;
  Node node_;
};

using queued_wait = basic_queued_wait<wait_node>;

}  // namespace weft::detail
