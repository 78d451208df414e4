// scheduler/idle.cpp: see idle.hpp for the protocol and the no-lost-wake-up argument.
#include "idle.hpp"

#include <algorithm>

#include "tsan.hpp"

namespace weft::detail {

idle::idle(std::size_t workers)
    : state_(static_cast<std::uint32_t>(workers) * unparked_one), workers_(workers) {
  sleepers_.reserve(workers);
}

std::optional<std::size_t> idle::worker_to_notify() {
#if WEFT_TSAN
  // The fence's stand-in under TSan (see the end of idle.hpp's argument): an RMW on state_ puts
  // this read in state_'s modification order against the parking worker's RMW.
  // Ordering: seq_cst RMW, paired with the parking worker's seq_cst RMW on state_.
  const std::uint32_t state = state_.fetch_add(0, std::memory_order_seq_cst);
#else
  // Ordering: the producer's StoreLoad barrier (idle.hpp). Model-checked: mutant idle_notify_fence.
  detail::atomic_thread_fence(
      WEFT_ORDER(idle_notify_fence, std::memory_order_seq_cst, std::memory_order_relaxed));
  const std::uint32_t state = state_.load(std::memory_order_relaxed);
#endif
  if (!should_wake(state)) return std::nullopt;
  return wake_one();
}

std::optional<std::size_t> idle::wake_one() {
  std::lock_guard lock(mutex_);
  // Re-check under the lock: another producer may have woken a worker meanwhile. Ordering: relaxed
  // suffices. The parked count only changes under mutex_ (transition_to_parked, this function,
  // transition_from_parked), and the lock's acquire makes the latest of those changes visible;
  // the searching count cannot be older than the one the caller read after its fence (read-read
  // coherence on one thread), so "nobody searching" there and "somebody searching" here means a
  // searcher started since, and the searcher's own re-check covers the work (idle.hpp). The
  // no-lost-wake-up argument runs through the caller's fence, not through this load.
  if (!should_wake(state_.load(std::memory_order_relaxed)) || sleepers_.empty()) {
    return std::nullopt;
  }
  // The woken worker starts as a searcher, which also stops other producers from waking more.
  // Ordering: seq_cst, so that this increment has a place in the order S of idle.hpp's argument:
  // a producer whose fence follows it reads "one searching" and leaves the wake-up to this
  // worker, which re-reads every queue after its futex wake (a seq_cst load in steal/size
  // checks) and so sees that producer's work. On x86 a locked RMW costs the same in any order.
  state_.fetch_add(unparked_one | 1, std::memory_order_seq_cst);
  const std::size_t index = sleepers_.back();
  sleepers_.pop_back();
  return index;
}

bool idle::transition_to_searching() noexcept {
  // A CAS, not a load then an add: two workers that both read "one below half" would otherwise
  // both become searchers and exceed the bound (a read-then-add race noted in issue 11).
  // Ordering: relaxed for the first read (a hint, re-validated by the CAS). The successful CAS is
  // seq_cst for the reason given in wake_one(): a producer whose fence follows it in S sees a
  // searcher and does not wake a sleeper, so this searcher's later queue reads (seq_cst, after
  // the CAS in S) must see that producer's work, or it re-checks after parking. Failure: relaxed,
  // the loop re-reads.
  std::uint32_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (2 * (state & searching_mask) >= workers_) return false;
    // Ordering: seq_cst on success, relaxed on failure (the argument above).
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

bool idle::transition_from_searching() noexcept {
  // Ordering: seq_cst. The last searcher to stop must be ordered against producers that read
  // "someone is searching" and so did not wake anyone: it returns true to its caller, which then
  // calls worker_to_notify() (a fence and a read after this RMW in S) and wakes the next worker if
  // work is left. An acq_rel RMW would be enough for the count itself; seq_cst keeps it in S.
  const std::uint32_t before = state_.fetch_sub(1, std::memory_order_seq_cst);
  return (before & searching_mask) == 1;
}

bool idle::transition_to_parked(std::size_t index, bool searching) {
  std::lock_guard lock(mutex_);
  const std::uint32_t decrement = unparked_one | (searching ? 1U : 0U);
  // Ordering: the seq_cst RMW that the no-lost-wake-up argument in idle.hpp relies on.
  // Model-checked: mutant idle_park_rmw.
  const std::uint32_t before = state_.fetch_sub(
      decrement, WEFT_ORDER(idle_park_rmw, std::memory_order_seq_cst, std::memory_order_acq_rel));
  sleepers_.push_back(index);
  return searching && (before & searching_mask) == 1;
}

bool idle::transition_from_parked(std::size_t index) {
  std::lock_guard lock(mutex_);
  const auto it = std::find(sleepers_.begin(), sleepers_.end(), index);
  if (it == sleepers_.end()) return true;  // removed by worker_to_notify(): now a searcher
  sleepers_.erase(it);
  // Woken for shutdown, not for work: counted as unparked again. Ordering: seq_cst keeps every
  // change of the parked count in S (the virtual clock's all_parked() reads it with seq_cst); the
  // list change itself is ordered by mutex_.
  state_.fetch_add(unparked_one, std::memory_order_seq_cst);
  return false;
}

}  // namespace weft::detail
