// scheduler/deque.hpp: a worker's bounded work-stealing deque (Chase-Lev).
//
// The owning worker pushes and pops at the bottom (LIFO, so fork-join runs depth first and stays
// in cache); other workers steal from the top (FIFO, so they take the oldest, usually largest,
// pieces of work). The algorithm and its memory orders follow Le, Pop, Cohen and Zappa Nardelli,
// "Correct and Efficient Work-Stealing for Weak Memory Models" (PPoPP 2013), with two changes:
//
// - The buffer is fixed (no growth). A full deque makes push() fail; the worker then moves half of
//   its tasks to the injection queue (take_half_for_overflow) and retries.
// - The paper's seq_cst fences are expressed as seq_cst loads and stores of `top` and `bottom`
//   instead. In pop(), the fence orders the store of the decremented bottom before the load of top
//   (a StoreLoad barrier); steal() needs top loaded before bottom. With all four accesses seq_cst,
//   the single total order over seq_cst operations forbids the Dekker outcome in which the owner
//   and a thief both miss each other's update: at least one of them sees the other, and the last
//   item is then decided by the CAS on top. On x86-64 a seq_cst store compiles to the same
//   xchg the fence would, and seq_cst loads are plain loads, so this costs nothing; it also keeps
//   ThreadSanitizer, which does not model standalone fences, exact (reliability rule 2).
//
// Light mode (the fork-join path's pops). pop()'s StoreLoad barrier is an `xchg` per pop, which
// perf put at about a fifth of skynet's time. A deque in light mode lets its owner take fork_join
// children back (pop_if) with a compiler barrier in its place, and moves the cost to the thieves:
// a thief that sees the mode calls heavy_fence() (heavy_fence.hpp) between its loads of top and
// bottom. For each light pop P (store bottom, load top) and steal S (load top, heavy fence, load
// bottom), the fence gives one of the two outcomes the symmetric fences give: S's load of bottom
// sees P's store, or P's load of top sees S's value of top or a later one. The Dekker argument
// above (and the paper's) uses nothing else, so the last item is again decided by the CAS on top.
// The mode's two ends:
// - enter_light() stores the flag, then runs heavy_fence(). A thief that reads the flag unset
//   (thieves read it after their load of top) did so before the point the fence placed in its
//   program, so its load of top came before that point as well, and every pop after the fence
//   reads that value of top or a later one: the second outcome, without a fence of its own.
// - leave_light() stores the flag unset with release; a thief that reads that store (acquire)
//   sees every light pop's store of bottom before its own load of bottom: the first outcome.
// A thief that finds the flag set steals one item at a time, each with its own fence (a fence
// covers only the steal whose loads it separates). The owner enters the mode only after many
// fork pops in a row and leaves it when its deque runs dry (worker.cpp), so steals from it are
// rare while it lasts: fork-join steals take whole subtrees. Where heavy_fence is unavailable
// (old kernel, seccomp, ThreadSanitizer, the model checker) the mode is never entered.
//
// Items are non-null pointers (coroutine frame addresses). The element slots are atomics because a
// thief may read a slot that the owner is overwriting after a wrap-around; such a thief always
// loses its CAS on top and discards what it read.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <weft/scheduler/detail/atomic.hpp>

#ifndef WEFT_MODEL_CHECK
#include "heavy_fence.hpp"
#endif

namespace weft::detail {

template <std::size_t Capacity>
class work_deque {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "capacity: a power of two");

 public:
  static constexpr std::size_t capacity = Capacity;

  // Owner only. False if the deque is full.
  bool push(void* item) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // `top` only grows, so a stale copy underestimates the free space and is safe to use; the
    // owner re-reads the shared `top` (a line thieves write) only when the copy says "full".
    // Ordering: acquire so that slots freed by thieves' CAS on top are really free before reuse.
    if (b - top_cache_ >= static_cast<std::int64_t>(Capacity)) {
      top_cache_ = top_.load(std::memory_order_acquire);
      if (b - top_cache_ >= static_cast<std::int64_t>(Capacity)) return false;
    }
    slot(b).store(item, std::memory_order_relaxed);
    // Ordering: release publishes the slot to thieves, who load bottom before reading the slot.
    // (Model-checked: tests/model/test_model_deque.cpp, mutant deque_push_release.)
    bottom_.store(b + 1, WEFT_ORDER(deque_push_release, std::memory_order_release,
                                    std::memory_order_relaxed));
    return true;
  }

  // Owner only. The most recently pushed item, or null.
  void* pop() noexcept { return take<false>(); }

  // Owner only. Whether light mode is on, and its two ends (see the file comment).
  [[nodiscard]] bool light() const noexcept { return light_owner_; }
#ifndef WEFT_MODEL_CHECK
  // Requires heavy_fence_available().
  void enter_light() noexcept {
    // Ordering: relaxed; the heavy fence right after orders it (file comment).
    light_.store(true, std::memory_order_relaxed);
    heavy_fence();
    light_owner_ = true;
  }
#endif
  void leave_light() noexcept {
    light_owner_ = false;
    // Ordering: release: every light pop's store of bottom is visible to a thief that reads this.
    light_.store(false, std::memory_order_release);
  }
  // Any thread: the mode as a worker going to sleep must see it (idle.hpp). Ordering: acquire,
  // pairs with leave_light's release.
  [[nodiscard]] bool light_flag() const noexcept { return light_.load(std::memory_order_acquire); }
  // Any thread; a hint (thieves steal one item at a time from a deque in light mode).
  [[nodiscard]] bool light_hint() const noexcept { return light_.load(std::memory_order_relaxed); }

 private:
  // pop(), and pop_if() in light mode (Light: no StoreLoad fence, file comment).
  template <bool Light>
  void* take() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    // Empty, known without touching shared lines: `top_cache_` is a lower bound of `top`, so
    // bottom at or below it means no item is left. The worker loop asks an empty deque on every
    // task switch of a wake-up chain (a mutex hand-off, a ping-pong), and the protocol below costs
    // a locked store to `bottom`, a line the searching workers read.
    if (b < top_cache_) return nullptr;
    std::int64_t t = 0;
    if constexpr (Light) {
      // Light mode: the thieves' heavy fence stands in for the barrier (file comment). The
      // compiler barrier keeps the store before the load in the emitted code.
      // Ordering: relaxed store; acquire load, as the mutant-free path's load below is at least.
      bottom_.store(b, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      t = top_.load(std::memory_order_acquire);
    } else {
      // Ordering: seq_cst store then seq_cst load of top: the StoreLoad barrier described above.
      // (Model-checked: mutants deque_take_store and deque_take_load.)
      bottom_.store(
          b, WEFT_ORDER(deque_take_store, std::memory_order_seq_cst, std::memory_order_relaxed));
      t = top_.load(
          WEFT_ORDER(deque_take_load, std::memory_order_seq_cst, std::memory_order_acquire));
    }
    top_cache_ = t;
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    void* item = slot(b).load(std::memory_order_relaxed);
    if (t == b) {
      top_cache_ = t + 1;  // whoever wins the CAS below, top ends at t + 1 or beyond
      // The last item: a thief may be taking it. Whoever moves top from t wins.
      // Ordering: acquire on failure. The winning thief read slot t before its CAS (release, as
      // part of seq_cst); the owner will reuse that slot for a later push. Acquiring the thief's
      // CAS makes the thief's read of the slot happen before the owner's overwrite, so the thief
      // cannot read the new item (C++ allows that load-buffering outcome with a relaxed failure
      // order; x86 and ARMv8 never show it, and the model checker does not explore it).
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_acquire)) {
        item = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

 public:
  // Owner only. Pops the bottom item if it is `expected`, else leaves the deque as it is: true if
  // `expected` was taken (fork_join's hand-off to the next sibling, fork_join.cpp). The peek is a
  // relaxed read of the owner's own slot; a thief may have taken that item meanwhile, in which
  // case pop() below finds the deque empty (the full protocol, so it cannot take it twice).
  bool pop_if(void* expected) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    if (b < top_cache_ || slot(b).load(std::memory_order_relaxed) != expected) return false;
    return (light_owner_ ? take<true>() : take<false>()) == expected;
  }

  enum class steal_result { success, empty, lost_race };

  // Any thread. Takes the oldest item.
  steal_result steal(void*& out) noexcept {
    // Ordering: seq_cst loads of top then bottom, the thief's half of the argument above: if the
    // owner's decrement of bottom precedes this load in the seq_cst order, the thief sees it.
    // (Model-checked: mutant deque_steal_load.)
    std::int64_t t = top_.load(std::memory_order_seq_cst);
#ifndef WEFT_MODEL_CHECK
    // Light mode (file comment). Read after top: a thief that sees it unset read top before the
    // point enter_light's fence placed in its program.
    // Ordering: acquire pairs with leave_light's release (the light pops' stores of bottom).
    if (light_.load(std::memory_order_acquire)) [[unlikely]] {
      // Empty, as far as a stale look tells: a thief may always fail; spare the fence.
      if (t >= bottom_.load(std::memory_order_relaxed)) return steal_result::empty;
      heavy_fence();
    }
#endif
    // Ordering: seq_cst, the load of bottom after top argued above.
    const std::int64_t b = bottom_.load(
        WEFT_ORDER(deque_steal_load, std::memory_order_seq_cst, std::memory_order_acquire));
    if (t >= b) return steal_result::empty;
    void* item = slot(t).load(std::memory_order_relaxed);
    // Ordering: seq_cst CAS; success means no other thief and no pop() took index t.
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return steal_result::lost_race;
    }
    out = item;
    return steal_result::success;
  }

  // Owner only. Claims up to half of the items from the top in one CAS and copies them to `out`
  // (which must hold Capacity / 2). Used when the deque is full. Only thieves race on top and they
  // all use CAS, so a successful CAS from t to t + n makes items [t, t + n) ours alone; pop() does
  // not run concurrently because the owner is the caller.
  std::size_t take_half_for_overflow(void** out) noexcept {
    // Ordering: acquire, as in push(): thieves read their slots before their CAS moved top past
    // them. The CAS below is seq_cst like every other RMW on top (steal's argument); on failure
    // (relaxed) nothing copied is used.
    std::int64_t t = top_.load(std::memory_order_acquire);
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t n = (b - t) / 2;
    if (n <= 0) return 0;
    for (std::int64_t i = 0; i < n; ++i)
      out[i] = slot(t + i).load(std::memory_order_relaxed);
    // Ordering: seq_cst, as every RMW on top_ (see the load's comment above).
    if (!top_.compare_exchange_strong(t, t + n, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return 0;  // a thief moved top: the deque is no longer full, the caller retries the push
    }
    return static_cast<std::size_t>(n);
  }

  // Any thread; a snapshot that may be stale by the time it returns.
  // Ordering: seq_cst, because a worker going to sleep re-checks the deques with it after its
  // seq_cst RMW on the idle state (idle.hpp): the no-lost-wake-up argument needs these loads in the
  // seq_cst order. (Model-checked: mutant deque_recheck_load.)
  [[nodiscard]] std::int64_t size_estimate() const noexcept {
    const std::int64_t b = bottom_.load(
        WEFT_ORDER(deque_recheck_load, std::memory_order_seq_cst, std::memory_order_acquire));
    const std::int64_t t = top_.load(
        WEFT_ORDER(deque_recheck_load, std::memory_order_seq_cst, std::memory_order_acquire));
    return b > t ? b - t : 0;
  }

 private:
  atomic<void*>& slot(std::int64_t index) noexcept {
    return buffer_[static_cast<std::size_t>(index) & (Capacity - 1)];
  }

  alignas(64) atomic<std::int64_t> top_{0};
  alignas(64) atomic<std::int64_t> bottom_{0};
  // Light mode, as thieves see it: written by the owner only (enter_light, leave_light), on the
  // owner's line that thieves read anyway.
  std::atomic<bool> light_{false};
  bool light_owner_ = false;    // owner only: the mode its pops use
  std::int64_t top_cache_ = 0;  // owner only: a lower bound of top_ (top_ only grows)
  alignas(64) std::array<atomic<void*>, Capacity> buffer_{};
};

}  // namespace weft::detail
