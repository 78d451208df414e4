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
#if WEFT_TSAN
#include <mutex>
#endif

namespace weft::detail {

// Under ThreadSanitizer every call into the queue holds `tsan_mutex_`. moodycamel recycles a block
// after the last consumer's release-only fetch_add on the block's dequeued count, with no acquire
// by that consumer (Block::set_many_empty), so in the C++ model the other consumers' reads of the
// block's slots do not happen before the producer's reuse of them. x86 RMWs are full barriers, so
// this is harmless here, but TSan reports it (test_scheduler's S2 did) and it lies outside weft;
// the lock gives TSan the ordering instead of a suppression (reliability rule 2). weft's own
// ordering (the seq_cst `length_`) stays outside the lock and stays checked.
class injector {
 public:
  using consumer_token = moodycamel::ConsumerToken;

  void push(void* item) {
    {
      tsan_guard guard(*this);
      queue_.enqueue(item);
    }
    // Ordering: seq_cst RMW after the enqueue; see idle.hpp for the no-lost-wake-up argument.
    length_.fetch_add(1, std::memory_order_seq_cst);
  }

  void push_bulk(void* const* items, std::size_t count) {
    if (count == 0) return;
    {
      tsan_guard guard(*this);
      queue_.enqueue_bulk(items, count);
    }
    length_.fetch_add(static_cast<std::int64_t>(count), std::memory_order_seq_cst);
  }

  // Dequeues up to `max` items; 0 if (probably) empty.
  std::size_t pop_bulk(consumer_token& token, void** out, std::size_t max) {
    // A relaxed peek keeps idle workers from touching the queue's internals when it is empty.
    if (length_.load(std::memory_order_relaxed) <= 0) return 0;
    std::size_t n = 0;
    {
      tsan_guard guard(*this);
      n = queue_.try_dequeue_bulk(token, out, max);
    }
    if (n != 0) length_.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    return n;
  }

  // Ordering: seq_cst, for the parking re-check (idle.hpp).
  [[nodiscard]] std::int64_t length() const noexcept {
    return length_.load(std::memory_order_seq_cst);
  }

  consumer_token make_token() { return consumer_token(queue_); }

  // Shutdown only: drops every item without resuming it.
  void clear() {
    void* item = nullptr;
    tsan_guard guard(*this);
    while (queue_.try_dequeue(item)) {
    }
    length_.store(0, std::memory_order_relaxed);
  }

 private:
#if WEFT_TSAN
  struct tsan_guard {
    explicit tsan_guard(injector& q) : lock(q.tsan_mutex_) {}
    std::lock_guard<std::mutex> lock;
  };
  std::mutex tsan_mutex_;
#else
  struct tsan_guard {
    explicit tsan_guard(injector&) noexcept {}
  };
#endif
  moodycamel::ConcurrentQueue<void*> queue_;
  alignas(64) std::atomic<std::int64_t> length_{0};
};

}  // namespace weft::detail
