// scheduler/injector.hpp: the runtime's global injection queue.
//
// Tasks enter here when they do not come from a worker of this runtime (runtime::spawn from another
// thread, the poller's expired timers and ready sockets) and when a worker's deque overflows. It is
// a moodycamel::ConcurrentQueue (lock-free, many producers and consumers), plus an exact count.
//
// Why the count: the queue's try_dequeue may report empty while an enqueue is still in progress on
// another thread, which is fine for throughput but not for deciding to sleep. A worker about to
// park checks `length()` instead, after its seq_cst transition in idle.hpp; producers add to the
// count with a seq_cst RMW after enqueueing. The count can dip below zero for a moment (a consumer
// may dequeue before the producer's increment lands); only "> 0" is ever tested.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <concurrentqueue.h>

#include "tsan.hpp"

namespace weft::detail {

// Under ThreadSanitizer the queue runs its real atomics, but TSan is told to look away inside it
// and is given instead exactly the happens-before edge that the queue guarantees and that weft
// relies on: an item's enqueue happens before its dequeue.
//
// Why TSan does not watch moodycamel itself: the queue recycles a block after the last consumer's
// release-only fetch_add on the block's dequeued count, with no acquire by that consumer
// (Block::set_many_empty), so in the C++ model the other consumers' reads of the block's slots do
// not happen before the producer's reuse of them. x86 RMWs are full barriers, so this is harmless
// here, but TSan reports it (test_scheduler's S2 did) and it lies outside weft. Why not a lock
// around every call (what was done before): a lock orders every call after every earlier one,
// pushes with pushes and pops with pops and pops with later pushes, and so hid any missing
// ordering on any path of weft through the queue.
//
// What TSan checks on these paths: weft's own accesses, ordered only by (1) each item's push ->
// pop edge, a __tsan_release before the enqueue and a __tsan_acquire after the dequeue, both on
// the item's address (tasks are frames, real heap addresses; TSan drops an address's sync state
// when the memory is freed, so a reused frame starts afresh: the asan and tsan presets build with
// WEFT_FRAME_ALLOCATOR=system, whose frames are freed for real), and (2) the seq_cst `length_`,
// which stays outside and stays checked. What it does not check: the queue's internals (their
// races, their memory reuse). Items must be addresses of memory the program owns.
#if WEFT_TSAN
extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
void AnnotateIgnoreSyncBegin(const char* file, int line);
void AnnotateIgnoreSyncEnd(const char* file, int line);
}
// For the duration of one call into the queue, on this thread: no memory access is checked and no
// atomic operation creates happens-before.
struct tsan_look_away {
  tsan_look_away() noexcept {
    __tsan_ignore_thread_begin();
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
  }
  ~tsan_look_away() {
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
    __tsan_ignore_thread_end();
  }
  tsan_look_away(const tsan_look_away&) = delete;
  tsan_look_away& operator=(const tsan_look_away&) = delete;
};
inline void tsan_published(void* const* items, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i)
    __tsan_release(items[i]);
}
inline void tsan_received(void* const* items, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i)
    __tsan_acquire(items[i]);
}
#else
struct tsan_look_away {};
inline void tsan_published(void* const*, std::size_t) noexcept {}
inline void tsan_received(void* const*, std::size_t) noexcept {}
#endif

class injector {
 public:
  using consumer_token = moodycamel::ConsumerToken;

  void push(void* item) {
    tsan_published(&item, 1);
    {
      [[maybe_unused]] tsan_look_away look_away;
      queue_.enqueue(item);
    }
    // Ordering: seq_cst RMW after the enqueue; see idle.hpp for the no-lost-wake-up argument.
    length_.fetch_add(1, std::memory_order_seq_cst);
  }

  void push_bulk(void* const* items, std::size_t count) {
    if (count == 0) return;
    tsan_published(items, count);
    {
      [[maybe_unused]] tsan_look_away look_away;
      queue_.enqueue_bulk(items, count);
    }
    // Ordering: as in push(): the seq_cst RMW the parking re-check pairs with (idle.hpp).
    length_.fetch_add(static_cast<std::int64_t>(count), std::memory_order_seq_cst);
  }

  // Dequeues up to `max` items; 0 if (probably) empty.
  std::size_t pop_bulk(consumer_token& token, void** out, std::size_t max) {
    // A relaxed peek keeps idle workers from touching the queue's internals when it is empty.
    if (length_.load(std::memory_order_relaxed) <= 0) return 0;
    std::size_t n = 0;
    {
      [[maybe_unused]] tsan_look_away look_away;
      n = queue_.try_dequeue_bulk(token, out, max);
    }
    tsan_received(out, n);
    // Relaxed: the count is a hint for the peek above and for length(); it never publishes an
    // item (the queue itself does), and a stale count only costs one empty try or one re-check.
    if (n != 0) length_.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    return n;
  }

  // Ordering: seq_cst, for the parking re-check (idle.hpp).
  [[nodiscard]] std::int64_t length() const noexcept {
    return length_.load(std::memory_order_seq_cst);
  }

  consumer_token make_token() {
    [[maybe_unused]] tsan_look_away look_away;
    return consumer_token(queue_);
  }

  // Shutdown only (no other thread left): empties the queue without resuming anything, showing
  // each item to `seen` (runtime.cpp keeps the queued foreign tasks among them).
  template <class Seen>
  void clear(Seen&& seen) {
    void* item = nullptr;
    for (;;) {
      {
        [[maybe_unused]] tsan_look_away look_away;
        if (!queue_.try_dequeue(item)) break;
      }
      tsan_received(&item, 1);
      seen(item);
    }
    length_.store(0, std::memory_order_relaxed);
  }

 private:
  moodycamel::ConcurrentQueue<void*> queue_;
  alignas(64) std::atomic<std::int64_t> length_{0};
};

}  // namespace weft::detail
