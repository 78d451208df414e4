// weft/primitives/detail/mpmc_ring.hpp: a bounded lock-free multi-producer multi-consumer FIFO
// that can be closed; the item store of weft::channel's fast path (detail/channel_core.hpp).
//
// The design is the well-known per-slot sequence ring (D. Vyukov's bounded MPMC queue), with a
// close mark folded into the tail word so that "closed" and "room for one more" are decided by one
// compare-and-swap:
//   tail_ = (next position to fill) << 1 | closed      head_ = next position to empty
//   slot i of lap L is free for position p = L * capacity + i when its stamp is 2p, and holds the
//   item of position p when its stamp is 2p + 1; emptying it sets the stamp to 2(p + capacity),
//   for the position that fills it next. (Doubled so that capacity 1 works: with plain p and
//   p + 1, "full for p" and "free for p + 1" would be the same stamp.)
// A sender claims position p by moving tail_ from p to p + 1 (fails once the close mark is set),
// then constructs the item and publishes it with the stamp; a receiver claims p by moving head_,
// moves the item out and frees the slot with the stamp. Positions never wrap (64 bits).
//
// Exact answers. try_pop reports "empty" only when head_ == tail_'s position, and try_push "full"
// only when tail_'s position - head_ == capacity, both true at one instant; a slot that is claimed
// but not yet written (or not yet freed) is waited for with a short spin, since its owner is
// between two stores. So a send counts from its claim (the tail_ CAS) and a receive from its claim
// (the head_ CAS): these two seq_cst read-modify-writes are the linearization points, and the
// channel's waiter protocol pairs with them (channel_core.hpp, "Dekker pairing").
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

namespace weft::detail {

template <class T>
class mpmc_ring {
  static_assert(std::is_nothrow_move_constructible_v<T>);

 public:
  enum class push_result { done, full, closed };
  enum class pop_result { done, empty, closed };  // closed: empty and closed, nothing will come

  // capacity >= 1. Allocates the slots (may throw std::bad_alloc).
  explicit mpmc_ring(std::size_t capacity)
      : slots_(std::make_unique<slot[]>(capacity)),
        capacity_(capacity),
        mask_((capacity & (capacity - 1)) == 0 ? capacity - 1 : 0) {
    for (std::size_t i = 0; i < capacity; ++i)
      slots_[i].stamp.store(2 * i, std::memory_order_relaxed);  // published by the owner's creation
  }
  mpmc_ring(const mpmc_ring&) = delete;
  mpmc_ring& operator=(const mpmc_ring&) = delete;
  // No operation runs concurrently with the destructor: every claimed slot was written.
  ~mpmc_ring() {
    const std::size_t end = tail_.load(std::memory_order_relaxed) >> 1;
    for (std::size_t p = head_.load(std::memory_order_relaxed); p != end; ++p)
      item(at(p))->~T();
  }

  // Moves from `value` only when it returns done.
  push_result try_push(T& value) noexcept {
    bool lost_race = false;
    return try_push(value, lost_race);
  }
  pop_result try_pop(std::optional<T>& out) noexcept {
    bool lost_race = false;
    return try_pop(out, lost_race);
  }

  // As above, and sets `lost_race` when another thread claimed the position this call was about
  // to claim (its CAS found the index moved): a sign that another core is doing the same operation
  // on this ring right now (channel_core.hpp, "Contention"). Never cleared here.
  push_result try_push(T& value, bool& lost_race) noexcept {
    // Ordering: seq_cst, so the closed and full decisions below are in the single total order
    // that channel_core's Dekker pairing relies on (the claim itself is the CAS).
    std::size_t t = tail_.load(std::memory_order_seq_cst);
    for (unsigned spins = 0;; ++spins) {
      if ((t & 1) != 0) return push_result::closed;
      const std::size_t pos = t >> 1;
      slot& s = at(pos);
      // Acquire pairs with the release store of the receiver that emptied this slot a lap ago:
      // its move out and destruction happen before we construct the next item in it.
      if (s.stamp.load(std::memory_order_acquire) == 2 * pos) {
        // Ordering: seq_cst; the claim is the send's linearization point, and channel_core's Dekker
        // pairing (the sender's later seq_cst load of `waiters_` against a registering receiver's
        // seq_cst increment then load of tail_) needs both to be in the single total order. Failure
        // reloads t (seq_cst as well: the same total order).
        const std::size_t claimed = t;
        if (tail_.compare_exchange_weak(t, t + 2, std::memory_order_seq_cst)) {
          ::new (static_cast<void*>(s.storage)) T(std::move(value));
          // Release pairs with the receiver's acquire load of the stamp: the item is constructed.
          s.stamp.store(2 * pos + 1, std::memory_order_release);
          return push_result::done;
        }
        if (t != claimed) lost_race = true;  // not a spurious failure of the weak CAS
        continue;
      }
      // The slot is not free for `pos`: the ring is full, or a receiver claimed the slot and has
      // not freed it yet, or `t` is stale. Ordering: seq_cst, the fullness decision is in the total
      // order.
      const std::size_t h = head_.load(std::memory_order_seq_cst);
      const std::size_t t2 = tail_.load(std::memory_order_seq_cst);
      // tail_ unchanged across the read of head_: at that instant head_ <= pos, so pos - h is the
      // exact number of items claimed and not yet freed.
      if (t2 == t && pos - h >= capacity_) return push_result::full;
      if (t2 == t) pause(spins);  // a receiver between its claim and its stamp store
      t = t2;
    }
  }

  pop_result try_pop(std::optional<T>& out, bool& lost_race) noexcept {
    // Ordering: seq_cst, as in try_push (the emptiness decision is in the total order).
    std::size_t h = head_.load(std::memory_order_seq_cst);
    for (unsigned spins = 0;; ++spins) {
      slot& s = at(h);
      // Acquire pairs with the sender's release store of the stamp: the item is constructed.
      if (s.stamp.load(std::memory_order_acquire) == 2 * h + 1) {
        // seq_cst: the receive's linearization point; channel_core pairs the receiver's later
        // seq_cst load of `waiters_` with a registering sender's increment then load of head_.
        const std::size_t claimed = h;
        if (head_.compare_exchange_weak(h, h + 1, std::memory_order_seq_cst)) {
          T* p = item(s);
          out.emplace(std::move(*p));
          p->~T();
          // Release pairs with the next lap's sender's acquire load: the slot is free to reuse.
          s.stamp.store(2 * (h + capacity_), std::memory_order_release);
          return pop_result::done;
        }
        if (h != claimed) lost_race = true;  // as in try_push
        continue;
      }
      // Read after h: tail_'s position >= h. Equal means empty at this instant (head_ only grows
      // and never passes the tail, so it was still h). Ordering: seq_cst, in the total order (see
      // try_push).
      const std::size_t t = tail_.load(std::memory_order_seq_cst);
      if ((t >> 1) == h) return (t & 1) != 0 ? pop_result::closed : pop_result::empty;
      // A sender claimed position h and has not published it yet, or h is stale.
      // Ordering: seq_cst, a re-read in the same total order (see try_push).
      const std::size_t h2 = head_.load(std::memory_order_seq_cst);
      if (h2 == h) pause(spins);
      h = h2;
    }
  }

  // From now on every try_push returns closed; items already claimed stay to be popped.
  // Ordering: seq_cst, ordered with the claims (a claim before the mark succeeded, one after it
  // fails).
  void close() noexcept { tail_.fetch_or(1, std::memory_order_seq_cst); }

  // Items claimed by senders and not yet claimed by receivers (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept {
    // Ordering: seq_cst for both, so that a size() of 0 under channel_core's lock is an exact
    // "drained" for close, in the same total order as the claims; tail read after h: t >= h.
    const std::size_t h = head_.load(std::memory_order_seq_cst);
    const std::size_t t = tail_.load(std::memory_order_seq_cst) >> 1;
    return t - h < capacity_ ? t - h : capacity_;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct slot {
    std::atomic<std::size_t> stamp{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };
  // The slot of position p. A division costs as much as the rest of an operation, so a
  // power-of-two capacity (mask_ != 0) masks instead. Capacity 1 divides (p % 1 is cheap too).
  slot& at(std::size_t p) const noexcept {
    return slots_[mask_ != 0 ? (p & mask_) : (p % capacity_)];
  }
  static T* item(slot& s) noexcept { return std::launder(reinterpret_cast<T*>(s.storage)); }

  // The other side is between two of its stores (a few instructions); yield the CPU after a while
  // in case it was preempted (more runnable threads than cores, spinlock.hpp explains when).
  static void pause(unsigned spins) noexcept {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }

  std::unique_ptr<slot[]> slots_;
  const std::size_t capacity_;
  const std::size_t mask_;  // capacity - 1 for a power of two above 1, else 0
  // Senders and receivers each hammer their own index: one cache line each.
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::atomic<std::size_t> head_{0};
};

}  // namespace weft::detail
