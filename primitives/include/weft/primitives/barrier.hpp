// weft/primitives/barrier.hpp: weft::barrier, Python's asyncio.Barrier (3.11), with the completion
// function of std::barrier.
//
//   weft::barrier step(3);                        // three tasks meet after every step
//   // in each of the three tasks
//   for (int i = 0; i < steps; ++i) {
//     co_await compute_my_part(i);
//     std::size_t index = co_await step.wait();   // suspends until all three have arrived
//   }
//
// wait() suspends the task until `parties` tasks wait, then releases them all together, and the
// barrier fills again for the next round (it is cyclic). Each task gets its index in the round:
// 0 for the first to arrive, parties - 1 for the last, which completes the round and does not
// suspend (asyncio's rule). An optional completion function runs once per round, on the last
// arriver's worker, after the round is complete and before any of its tasks is released
// (std::barrier's CompletionFunction); everything the parties did before arriving happens before
// it, and it happens before any of them returns from wait().
//
// reset() empties the barrier: the tasks waiting now throw weft::broken_barrier and the next
// arrival starts a new round; it also repairs a broken barrier. abort() breaks the barrier: the
// tasks waiting now, and every wait() until a reset(), throw broken_barrier. A completion function
// that throws breaks it too: the other tasks of its round, and those already waiting for the next,
// throw broken_barrier, and the last arriver gets the completion's exception (Python's
// threading.Barrier does the same with its `action`). reset(), abort(), parties(), n_waiting() and
// broken() may be called from any thread, a foreign one included; wait() only from a task on a
// worker (std::logic_error otherwise), as with event and latch, whose waits are the same.
//
// Differences from asyncio: reset() and abort() are plain functions (they only wake tasks, there
// is nothing to await). asyncio keeps a released round "draining" until all its tasks have run,
// and a task arriving meanwhile waits for that before it counts for the next round; weft takes
// the whole round out of the queue at once, so the next round counts arrivals at once. And under
// cancellation a round's indices stay 0..parties-1, each given once (asyncio's can repeat).
//
// Cancellation: wait() is a cancellation point.
//   - cancelled before it arrives (the cancellation was pending when wait() began): the task
//     throws cancelled_error and does not count;
//   - cancelled while the barrier fills: the task leaves the round (n_waiting() goes down by one)
//     and throws cancelled_error; the others keep waiting, the round needs one more arrival, and
//     the tasks behind the one that left move up one index, as in asyncio;
//   - cancelled after its round completed but before it resumed: the round stands. The task's
//     arrival counted, the other parties are released as usual, and the task throws
//     cancelled_error instead of returning its index. There is no grant to pass on (reliability
//     rule 3): the round holds nothing, and undoing an arrival after the round was released would
//     have to re-block tasks that already passed. asyncio behaves the same (its drained waiter
//     raises CancelledError and the others go on). The last arriver follows the same rule when
//     the cancellation comes after it arrived: it completes the round, runs the completion and
//     wakes the others first, then throws cancelled_error;
//   - a task that is both cancelled and broken (reset, abort) throws cancelled_error.
//
// Costs: a wait() takes the queue's spinlock once to arrive; the waiter node lives in the awaiter
// (the coroutine frame), so nothing allocates; the last arriver wakes the round after dropping the
// lock, one wake-up per task, and takes the lock once more per round if there is a completion
// function. The completion is a std::function, allocated (if at all) once, at construction. It
// runs on a worker thread: keep it short, since that worker (and the task in its LIFO slot) waits
// for it.
//
// State, all guarded by the queue's lock: the queue (the tasks waiting for the current round, in
// arrival order; its size is the count of arrivals), `broken_`, `completing_`.
// Invariant: outside a completion, and while not broken, fewer than `parties` tasks are queued:
// the arrival that would make `parties` completes the round instead of queueing.
// Invariant: a round's tasks are unlinked and granted in one critical section, by its last
// arrival. A cancellation decides under the same lock, so it either unlinks a task before the
// round is complete (the task does not count) or finds it granted (it counts and is released):
// no round releases with fewer than `parties` arrivals, and none strands a waiter.
// Invariant: while a completion runs (`completing_`), arrivals only queue. When it ends, the task
// that ran it hands a round that filled meanwhile to that round's last arriver, which runs the
// next completion: completions never overlap and run in round order.
// Invariant: while broken, nobody is queued (abort and a failed completion take the whole queue,
// and arrivals are turned away).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <stdexcept>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

// Thrown by barrier::wait() when the barrier is reset or broken (asyncio's BrokenBarrierError).
class broken_barrier : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// A barrier waiter: a wait_node plus what the grant hands over. Written by the task that grants
// it, under the queue's lock or while the node is unlinked and not yet woken; read by the waiter
// after its wake-up, which publishes it (see wait_queue.hpp).
struct barrier_node : wait_node {
  enum class outcome : unsigned char {
    released,         // the round completed; `index` is the task's
    completes_round,  // released, and this task runs the completion and wakes `round`
    reset,            // reset() emptied the barrier
    broken,           // abort(), or a completion function threw
  };
  std::size_t index = 0;
  outcome how = outcome::released;
  wait_node* round = nullptr;  // completes_round: the round's other tasks, a grant_front chain
};

}  // namespace detail

class barrier {
 public:
  class wait_awaiter;

  // Requires: parties >= 1 (std::invalid_argument otherwise). `completion`, if set, runs once per
  // round (see the file comment).
  explicit barrier(std::size_t parties, std::function<void()> completion = {})
      : parties_(parties), completion_(std::move(completion)) {
    if (parties == 0) throw std::invalid_argument("weft::barrier: parties must be at least 1");
  }
  // Requires: no task waits and no completion runs.
  ~barrier() = default;
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  // Arrives and waits until the round is complete; returns the task's index in its round
  // (0 .. parties() - 1). Throws broken_barrier if the barrier is broken or gets reset or broken
  // while the task waits. A cancellation point.
  [[nodiscard]] wait_awaiter wait() noexcept;

  // Back to empty and not broken; the tasks waiting now throw broken_barrier. Any thread.
  void reset() noexcept { break_waiters(/*stays_broken=*/false, outcome::reset); }

  // Breaks the barrier until reset(): the tasks waiting now and every later wait() throw
  // broken_barrier. A round whose completion is running is already complete and is not affected.
  // Any thread.
  void abort() noexcept { break_waiters(/*stays_broken=*/true, outcome::broken); }

  [[nodiscard]] std::size_t parties() const noexcept { return parties_; }

  // Tasks waiting for the round that is filling. A snapshot.
  [[nodiscard]] WEFT_API std::size_t n_waiting() const noexcept;

  // True from abort() (or a completion function that threw) until reset(). A snapshot.
  [[nodiscard]] bool broken() const noexcept {
    // Ordering: relaxed: a snapshot that orders nothing; every decision that depends on it is
    // made under the queue's lock.
    return broken_.load(std::memory_order_relaxed);
  }

 private:
  using node = detail::barrier_node;
  using outcome = node::outcome;

  // Under the lock: unlinks the first `count` queued tasks, granted with indices 0 .. count - 1,
  // onto `woken` (the last one granted is its head). primitives/barrier.cpp, as the rest below.
  void grant_round(std::size_t count, detail::wait_node*& woken) noexcept;
  // Under the lock: unlinks every queued task, granted with `how`, onto `woken`.
  void grant_all(outcome how, detail::wait_node*& woken) noexcept;
  WEFT_API void break_waiters(bool stays_broken, outcome how) noexcept;

  // Called by the task that completed a round, without the lock: runs the completion, wakes the
  // round's other tasks (granted, not yet woken) and, if the next round filled while the
  // completion ran, hands it to that round's last arriver. Returns the completion's exception.
  WEFT_API std::exception_ptr complete_round(detail::wait_node* round) noexcept;

  const std::size_t parties_;
  const std::function<void()> completion_;
  mutable detail::wait_queue queue_;
  std::atomic<bool> broken_{false};  // written under the queue's lock
  bool completing_ = false;          // guarded by the queue's lock
};

// The awaiter of barrier::wait(). A cancellation point while it waits.
class [[nodiscard]] barrier::wait_awaiter
    : private detail::basic_queued_wait<detail::barrier_node> {
 public:
  explicit wait_awaiter(barrier& b) noexcept : queued_wait(&b.queue_), barrier_(&b) {}
  wait_awaiter(const wait_awaiter&) = delete;
  wait_awaiter& operator=(const wait_awaiter&) = delete;

  // Arriving always takes the lock: there is no lock-free fast path to try.
  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    // A pending cancellation: not counted; await_resume throws.
    return suspend_in_queue(self, detail::wait_kind::barrier_wait, &arrive, this);
  }

  std::size_t await_resume() {
    if (node_.state != detail::node_state::granted) {
      finish();                 // withdraws the hook; throws the pending cancellation
      throw cancelled_error();  // unlinked by a cancellation whose request was taken back
    }
    if (node_.how == outcome::completes_round) {
      if (std::exception_ptr error = barrier_->complete_round(node_.round)) {
        abandon();  // a pending cancellation waits for the next point; the error comes first
        std::rethrow_exception(error);
      }
    }
    finish();  // cancelled after the round completed: the round stands, the task throws
    switch (node_.how) {
      case outcome::reset:
        throw broken_barrier("weft::barrier::wait: the barrier was reset while this task waited");
      case outcome::broken:
        throw broken_barrier(
            "weft::barrier::wait: the barrier is broken (abort(), or a completion function "
            "threw); reset() repairs it");
      case outcome::released:
      case outcome::completes_round:
        break;
    }
    return node_.index;
  }

 private:
  // Under the queue's lock (suspend_in_queue's decision): counts this arrival; it waits for the
  // round (true: suspend) or completes it or finds the barrier broken (false: do not suspend).
  WEFT_API static bool arrive(void* self) noexcept;

  // Under the lock: the node is granted without having been queued (cancel_wait leaves it alone).
  void grant_self(outcome how) noexcept {
    node_.state = detail::node_state::granted;
    node_.how = how;
  }

  barrier* barrier_;
};

inline barrier::wait_awaiter barrier::wait() noexcept { return wait_awaiter(*this); }

}  // namespace weft
