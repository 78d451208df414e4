// scheduler/idle.hpp: which workers are searching for work, which sleep, and who wakes whom.
//
// A worker with nothing to do first *searches* (steals from the others, polls the injection
// queue, spins briefly), then *parks*. At most half of the workers search at once, so a burst of
// idleness does not turn into a storm of failed steals. Pushing new work wakes a parked worker only
// if nobody is searching (a searcher will find the work) and somebody is parked; a searcher that
// finds work while it was the last searcher wakes the next one, so parallelism ramps up one worker
// at a time.
//
// `state_` packs two counters: searching workers (low 16 bits) and unparked workers (high 16).
// The list of parked workers is guarded by `mutex_`, taken only on the park/unpark slow paths.
//
// No lost wake-up. A producer publishes work (a release store of a deque's bottom, or a seq_cst
// RMW on the injector's length) and then calls worker_to_notify() (or, for a push onto its own
// deque, maybe_should_wake_for_local_work()), which issues a seq_cst fence and then reads
// `state_`. A worker going to sleep decrements `state_` with a seq_cst RMW in
// transition_to_parked() and then re-reads every queue with seq_cst loads before it sleeps.
// Suppose both miss each other: the producer's read of `state_` is coherence-ordered before the
// worker's RMW, so its fence precedes that RMW in the seq_cst order S ([atomics.order] rule for a
// fence before a read); the worker's queue load reads a value older than the producer's store, so
// that load precedes the producer's fence in S (rule for a write before a fence); and the worker's
// RMW precedes its own later load in S. That is a cycle in S, which is impossible. So either the
// worker sees the work and stays up, or the producer sees the worker parked and wakes one.
// tests/model/test_model_parking.cpp checks this with the model checker, on this class, the
// parker and the deque, with a mutant for each of the two barriers.
//
// Under ThreadSanitizer, which does not model fences, the fence is replaced by a seq_cst
// fetch_add(0) on `state_` itself. The argument then runs on the modification order of `state_`:
// if the producer's RMW comes first, the worker's RMW acquires it and so sees the published work;
// if the worker's RMW comes first, the producer's RMW reads the decremented count.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include <weft/scheduler/detail/atomic.hpp>

#include "tsan.hpp"

namespace weft::detail {

class idle {
 public:
  explicit idle(std::size_t workers);

  // Called after publishing work. Returns the worker to unpark, if one should be woken; the
  // returned worker counts as unparked and searching from now on.
  std::optional<std::size_t> worker_to_notify();

  // The variant for work pushed onto the calling worker's own deque: the same check, inline,
  // because it runs on every spawn and the common answer is "nobody to wake" (a plain bool test,
  // so the caller does not build an optional on the hot path); when it says a worker should be
  // woken, it takes the same slow path as worker_to_notify().
  //
  // Ordering: the StoreLoad barrier is needed here too. Without it (a relaxed load alone, as
  // before), the model checker finds the lost wake-up (tests/model/test_model_parking.cpp, mutant
  // idle_local_fence): the push's release store of bottom sits in the store buffer while this
  // load reads the state from before a worker's seq_cst decrement, and that worker's re-check
  // reads bottom from before the push; it sleeps, this worker is not told. The work is not lost
  // while its owner runs, but a task that waits for a sibling without suspending (a spin, a
  // blocking call) then waits for ever, and the pool runs one worker short until the next spawn.
  // Under TSan the fence becomes an RMW, as in worker_to_notify().
  [[nodiscard]] bool maybe_should_wake_for_local_work() noexcept {
    // Ordering: the StoreLoad barrier argued above, paired with the parking worker's seq_cst
    // decrement; under TSan an RMW stands in for the fence.
#if WEFT_TSAN
    return should_wake(state_.fetch_add(0, std::memory_order_seq_cst));
#else
    detail::atomic_thread_fence(
        WEFT_ORDER(idle_local_fence, std::memory_order_seq_cst, std::memory_order_relaxed));
    return should_wake(state_.load(std::memory_order_relaxed));
#endif
  }
  // The same check for a worker whose deque is in light mode (deque.hpp), or that is in a spawn
  // burst (worker.hpp, burst_after), with a compiler barrier in place of the fence: a worker going
  // to sleep that sees a deque in light mode runs a heavy fence between its seq_cst decrement and
  // its re-check (worker::park_until_notified), which gives one of the two outcomes the fence pair
  // gives (heavy_fence.hpp); one that sees no deque in light mode read each flag unset before the
  // point the mode's entry fence placed in its program (its decrement came before that, so this
  // load reads it), or read the mode's release on leaving (so its re-check sees every push made in
  // the mode). deque.hpp argues the same two ends for the pops.
  [[nodiscard]] bool maybe_should_wake_for_local_work_light() const noexcept {
    // Ordering: a compiler barrier only (the push's store stays before this load in the emitted
    // code); the parking side's heavy fence pairs with it, by the argument above. Not used under
    // TSan or the model checker, which never enter light mode.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return should_wake(state_.load(std::memory_order_relaxed));
  }
  // The slow path behind it: picks the worker to wake, if one should still be woken.
  std::optional<std::size_t> wake_one();

  // Try to become a searcher; false if half of the workers already search.
  bool transition_to_searching() noexcept;

  // The caller stops searching (it found work). True if it was the last searcher, in which case
  // the caller must call worker_to_notify() so that the remaining work is looked at.
  bool transition_from_searching() noexcept;

  // The caller (worker `index`) is about to park. True if it was the last searcher. After this the
  // caller must re-check every queue and call worker_to_notify() if it finds work.
  bool transition_to_parked(std::size_t index, bool searching);

  // After park() returned: true if the worker was woken by worker_to_notify() (and so is now a
  // searcher); false if it was woken for another reason (shutdown), in which case it is taken off
  // the sleepers list and counted as unparked, not searching.
  bool transition_from_parked(std::size_t index);

  // True when every worker has parked. Ordering: seq_cst, paired with the parking workers'
  // seq_cst RMWs, so the virtual clock's idleness check is ordered with the queue reads after it.
  [[nodiscard]] bool all_parked() const noexcept {
    return (state_.load(std::memory_order_seq_cst) >> 16) == 0;
  }

  // Workers searching right now (a snapshot, for statistics and tests).
  [[nodiscard]] std::size_t searching() const noexcept {
    return state_.load(std::memory_order_relaxed) & searching_mask;
  }

 private:
  static constexpr std::uint32_t searching_mask = 0xffff;
  static constexpr std::uint32_t unparked_one = 0x10000;

  bool should_wake(std::uint32_t state) const noexcept {
    return (state & searching_mask) == 0 && (state >> 16) < workers_;
  }

  // Own cache lines: every spawn reads state_, and the parking slow path writes the mutex.
  alignas(64) atomic<std::uint32_t> state_;
  alignas(64) mutex mutex_;
  std::vector<std::size_t> sleepers_;
  const std::size_t workers_;
};

}  // namespace weft::detail
