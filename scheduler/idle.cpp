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
  // Re-check under the lock: another producer may have woken a worker meanwhile.
  if (!should_wake(state_.load(std::memory_order_seq_cst)) || sleepers_.empty()) {
    return std::nullopt;
  }
  // The woken worker starts as a searcher, which also stops other producers from waking more.
  state_.fetch_add(unparked_one | 1, std::memory_order_seq_cst);
  const std::size_t index = sleepers_.back();
  sleepers_.pop_back();
  return index;
}

bool idle::transition_to_searching() noexcept {
  const std::uint32_t state = state_.load(std::memory_order_seq_cst);
  if (2 * (state & searching_mask) >= workers_) return false;
  state_.fetch_add(1, std::memory_order_seq_cst);
  return true;
}

bool idle::transition_from_searching() noexcept {
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
  state_.fetch_add(unparked_one, std::memory_order_seq_cst);
  return false;
}

}  // namespace weft::detail
