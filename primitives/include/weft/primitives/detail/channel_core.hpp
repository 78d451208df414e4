// weft/primitives/detail/channel_core.hpp: weft::channel's core, queue_core's hand-off protocol
// with a lock-free fast path for bounded channels.
//
// The waiter lists, their nodes, the awaiters and the cancellation rule are queue_core's
// (queue_core.hpp; the awaiters take this core as their `Core`). What differs is the store: a
// bounded channel keeps its values in an mpmc_ring (mpmc_ring.hpp), which senders and receivers
// use without the lock as long as nobody waits:
//   send:    if waiters_ == 0, claim a place in the ring and fill it; done.
//   receive: if waiters_ == 0, claim the oldest value in the ring; done.
// Everything else (a full or empty ring, waiters present, close, cancellation) takes the spinlock
// and runs queue_core's protocol, with `settle_locked` doing the hand-offs: it gives ring values
// to the waiting receivers in FIFO order and ring places to the waiting senders in FIFO order, and
// releases the receivers once the channel is closed and drained. An unbounded channel has no fast
// path: its values live in a growable ring_buffer under the lock, as in queue_core.
//
// Invariant, "nobody sleeps next to what it waits for": once no lock holder is running
// settle_locked and no fast-path operation is between its ring claim and its check of waiters_,
//   a receiver is linked only while the ring is empty, and a sender only while it is full.
// Dekker pairing that keeps it (all four accesses are seq_cst, so they are in one total order):
//   fast sender:          claim a ring place (tail_ CAS)  then  load waiters_
//   registering receiver: increment waiters_              then  look at the ring (tail_ load)
// Either the receiver's look sees the claimed value (and settle_locked hands it over right away),
// or the sender's load sees waiters_ > 0 and the sender takes the lock and runs settle_locked
// itself. The same pairing holds between a fast receiver (head_ CAS, then waiters_) and a
// registering sender (waiters_, then head_). A lock holder that leaves a waiter linked saw the
// ring empty (full) after that waiter's increment; any later claim is later in the total order
// than that look, so its own load of waiters_ sees the increment and settles again.
//
// FIFO. A fast operation runs only when waiters_ == 0, so it does not overtake a waiter that
// registered before its check; one that registered after is after it in the total order, so the
// fast operation came first. Waiters are served in list order by settle_locked.
//
// Contention. A send or receive awaited on the fast path that lost its claim to another thread
// (the ring's CAS found the index moved: another core is doing the same operation on this channel
// right now) still completes, and then yields its worker once (queue_waiter::yield_after), so the
// worker runs its other ready tasks first. Why: with producers and consumers spread over the
// workers, the ring's full and empty moments make every worker switch role at the same time, and
// the workers then spend most of their time all producing or all consuming, fighting over one
// index's cache line (a probe of bench_channel, 2 producers and 2 consumers on 2 workers: both
// workers in the same role 60-85% of the time, 10-15% of the claims lost, 40-100 ns per item).
// The loser's yield hands its worker to the other role, and the workers settle into opposite
// roles, where nobody loses a claim (86-88% of the time; 21-25 ns per item, the cost of the same
// ring driven by plain threads; docs/architecture.md, "Channel fast path"). An operation that
// did not lose a race pays nothing, and a worker with nothing else ready resumes the task at
// once. try_send and try_receive never yield: they do not suspend.
//
// Close: the lock holder sets shut_ and the ring's close mark (every later claim fails), releases
// the waiting senders (their values were not sent) and, through settle_locked, hands the values
// still in the ring to waiting receivers, releasing the rest only once the ring is drained. A
// sender whose claim came before the mark sent its value; the ring's exact "empty" (mpmc_ring.hpp)
// keeps a receiver from ending while that value is being written.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include <weft/primitives/detail/mpmc_ring.hpp>
#include <weft/primitives/detail/queue_core.hpp>
#include <weft/primitives/detail/ring_buffer.hpp>
#include <weft/scheduler/detail/spinlock.hpp>

namespace weft::detail {

template <class T>
class channel_core {
 public:
  using get_waiter = typename queue_core<T>::get_waiter;
  using put_waiter = typename queue_core<T>::put_waiter;

  // capacity 0: unbounded (no fast path). A bounded core allocates its ring here.
  explicit channel_core(std::size_t capacity)
      : ring_(capacity == 0 ? nullptr : std::make_unique<mpmc_ring<T>>(capacity)),
        capacity_(capacity) {}
  channel_core(const channel_core&) = delete;
  channel_core& operator=(const channel_core&) = delete;

  [[nodiscard]] std::size_t maxsize() const noexcept { return capacity_; }
  std::size_t size() noexcept {
    if (ring_) return ring_->size();
    lock_.lock();
    const std::size_t n = items_.size();
    lock_.unlock();
    return n;
  }
  bool is_shut_down() noexcept {
    lock_.lock();
    const bool shut = shut_;
    lock_.unlock();
    return shut;
  }

  // try_send. Moves from `value` only when it returns done.
  try_result try_put(T& value) {
    // Ordering: seq_cst, but only a hint (a fast send may start): the load after the claim, in
    // after_fast_op, is the one that pairs with link_locked's increment (file comment).
    if (ring_ && waiters_.load(std::memory_order_seq_cst) == 0) {
      switch (ring_->try_push(value)) {
        case mpmc_ring<T>::push_result::done:
          after_fast_op();
          return try_result::done;
        case mpmc_ring<T>::push_result::full:
          return try_result::would_block;
        case mpmc_ring<T>::push_result::closed:
          return try_result::shut_down;
      }
    }
    wake_list wakes;
    guard g(lock_);
    if (shut_) return try_result::shut_down;
    if (!putters_.empty() || !push_locked(value)) return try_result::would_block;
    settle_locked(wakes, nullptr);
    return try_result::done;
  }

  // try_receive.
  try_result try_get(std::optional<T>& out) noexcept {
    // Ordering: as in try_put (a hint; after_fast_op's load pairs with link_locked).
    if (ring_ && waiters_.load(std::memory_order_seq_cst) == 0) {
      switch (ring_->try_pop(out)) {
        case mpmc_ring<T>::pop_result::done:
          after_fast_op();
          return try_result::done;
        case mpmc_ring<T>::pop_result::empty:
          return try_result::would_block;
        case mpmc_ring<T>::pop_result::closed:
          return try_result::shut_down;
      }
    }
    wake_list wakes;
    guard g(lock_);
    if (getters_.empty() && pop_locked(out)) {
      settle_locked(wakes, nullptr);
      return try_result::done;
    }
    return shut_ && drained_locked() ? try_result::shut_down : try_result::would_block;
  }

  // For the send awaiter (queue_core's contract): completes the send now if it can (status
  // granted or shut_down) or, if `enqueue`, links the waiter. Returns false if it must suspend.
  bool put_or_enqueue(put_waiter* w, bool enqueue) {
    // Ordering: as in try_put (a hint; after_fast_op's load pairs with link_locked).
    if (!enqueue && ring_ && waiters_.load(std::memory_order_seq_cst) == 0) {
      bool lost_race = false;
      const auto r = ring_->try_push(w->value, lost_race);
      if (r == mpmc_ring<T>::push_result::done) {
        w->status = wait_status::granted;
        w->yield_after = lost_race;  // "Contention", file comment
        after_fast_op();
        return true;
      }
      if (r == mpmc_ring<T>::push_result::closed) {
        w->status = wait_status::shut_down;
        return true;
      }
      return false;  // full and nobody waits: nothing the locked path could do now
    }
    wake_list wakes;
    guard g(lock_);
    if (w->status == wait_status::cancelled) return true;
    if (shut_) {
      w->status = wait_status::shut_down;
    } else if (putters_.empty() && push_locked(w->value)) {  // no overtaking a waiting sender
      w->status = wait_status::granted;
      settle_locked(wakes, nullptr);
    } else if (enqueue) {
      link_locked(putters_, w);
      settle_locked(wakes, w);  // re-check after the increment: the ring may have room now
      return w->status != wait_status::waiting;
    }
    return w->status != wait_status::idle;
  }

  // For the receive awaiter, as put_or_enqueue.
  bool get_or_enqueue(get_waiter* w, bool enqueue) noexcept {
    // Ordering: as in try_put (a hint; after_fast_op's load pairs with link_locked).
    if (!enqueue && ring_ && waiters_.load(std::memory_order_seq_cst) == 0) {
      bool lost_race = false;
      const auto r = ring_->try_pop(w->item, lost_race);
      if (r == mpmc_ring<T>::pop_result::done) {
        w->status = wait_status::granted;
        w->yield_after = lost_race;  // "Contention", file comment
        after_fast_op();
        return true;
      }
      if (r == mpmc_ring<T>::pop_result::closed) {
        w->status = wait_status::shut_down;
        return true;
      }
      return false;  // empty and nobody waits
    }
    wake_list wakes;
    guard g(lock_);
    if (w->status == wait_status::cancelled) return true;
    if (getters_.empty() && pop_locked(w->item)) {  // no overtaking a waiting receiver
      w->status = wait_status::granted;
      settle_locked(wakes, nullptr);
    } else if (shut_ && drained_locked()) {
      w->status = wait_status::shut_down;
    } else if (enqueue) {
      link_locked(getters_, w);
      settle_locked(wakes, w);  // re-check after the increment: a value may have come
      return w->status != wait_status::waiting;
    }
    return w->status != wait_status::idle;
  }

  // on_cancel of the awaiters, as queue_core::cancel.
  bool cancel(queue_waiter* w, waiter_list channel_core::*list) noexcept {
    guard g(lock_);
    if (w->status == wait_status::waiting) {
      (this->*list).remove(w);
      // Ordering: under the lock like every change of waiters_; seq_cst like the others (a
      // decrement only lets fast operations run again, which is safe: see link_locked).
      waiters_.fetch_sub(1, std::memory_order_seq_cst);
      w->status = wait_status::cancelled;
      return true;
    }
    if (w->status == wait_status::idle) w->status = wait_status::cancelled;
    return false;
  }

  // close(): idempotent.
  void shutdown() noexcept {
    wake_list wakes;
    guard g(lock_);
    shut_ = true;
    if (ring_) ring_->close();
    while (!putters_.empty())
      release_locked(putters_.pop_front(), wait_status::shut_down, wakes);
    settle_locked(wakes, nullptr);  // hands out what is left, releases receivers once drained
  }

  waiter_list getters_;
  waiter_list putters_;

 private:
  // Locks for a scope; declared after the wake_list, so the lock is released before the wake-ups.
  struct guard {
    explicit guard(spinlock& l) noexcept : lock(l) { lock.lock(); }
    ~guard() { lock.unlock(); }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    spinlock& lock;
  };

  // A fast operation that saw waiters_ == 0 before its claim looks again after it. Ordering: this
  // seq_cst load pairs with link_locked's seq_cst increment (the Dekker pairing, file comment): a
  // waiter that registered meanwhile may have missed the claim, so settle.
  void after_fast_op() noexcept {
    if (waiters_.load(std::memory_order_seq_cst) == 0) return;
    wake_list wakes;
    guard g(lock_);
    settle_locked(wakes, nullptr);
  }

  void link_locked(waiter_list& list, queue_waiter* w) noexcept {
    // Ordering: seq_cst RMW before settle_locked's look at the ring; pairs with after_fast_op's
    // seq_cst load, the registering side of the Dekker pairing (file comment). waiters_ ==
    // getters_.size() + putters_.size() whenever the lock is free; only the fast paths read it
    // without the lock.
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    w->status = wait_status::waiting;
    list.push_back(w);
  }

  // `self`: as in settle_locked.
  void release_locked(queue_waiter* w, wait_status how, wake_list& wakes,
                      queue_waiter* self = nullptr) noexcept {
    // Ordering: under the lock; seq_cst like link_locked's increment (see there).
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    w->status = how;
    if (w != self) wakes.add(w);
  }

  // The hand-offs (file comment). `self` is a waiter that the caller is registering: if it is
  // served here it is not woken (it has not suspended); the caller returns "done" instead.
  void settle_locked(wake_list& wakes, queue_waiter* self) noexcept {
    for (;;) {
      if (!getters_.empty()) {
        auto* g = static_cast<get_waiter*>(getters_.front());
        if (pop_locked(g->item)) {
          getters_.pop_front();
          grant_locked(g, wakes, self);
          continue;
        }
        if (shut_) {  // closed and drained (the ring's "empty" is exact): nothing more comes
          while (!getters_.empty())
            release_locked(getters_.pop_front(), wait_status::shut_down, wakes, self);
        }
      }
      if (!putters_.empty()) {
        auto* p = static_cast<put_waiter*>(putters_.front());
        if (push_locked(p->value)) {  // cannot throw: only the bounded store has waiting senders
          putters_.pop_front();
          grant_locked(p, wakes, self);
          continue;
        }
      }
      return;
    }
  }

  void grant_locked(queue_waiter* w, wake_list& wakes, queue_waiter* self) noexcept {
    // Ordering: under the lock; seq_cst like link_locked's increment (see there).
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    w->status = wait_status::granted;
    if (w != self) wakes.add(w);
  }

  // The store under the lock. The ring is shared with the fast paths, so "full" and "empty" are
  // its exact answers at one instant. The unbounded store can throw on growth (strong guarantee).
  bool push_locked(T& value) {
    if (ring_) return ring_->try_push(value) == mpmc_ring<T>::push_result::done;
    items_.push_back(std::move(value));
    return true;
  }
  bool pop_locked(std::optional<T>& out) noexcept {
    if (ring_) return ring_->try_pop(out) == mpmc_ring<T>::pop_result::done;
    if (items_.empty()) return false;
    out.emplace(items_.pop_front());
    return true;
  }
  bool drained_locked() noexcept {
    if (!ring_) return items_.empty();
    return ring_->size() == 0;
  }

  // Waiting receivers and senders, changed only under the lock, read by the fast paths without
  // it. Its own cache line: the fast paths read it on every operation and it rarely changes.
  alignas(64) std::atomic<std::size_t> waiters_{0};
  alignas(64) spinlock lock_;
  std::unique_ptr<mpmc_ring<T>> ring_;  // bounded channel
  ring_buffer<T> items_;                // unbounded channel
  const std::size_t capacity_;
  bool shut_ = false;
};

}  // namespace weft::detail
