// weft/scheduler/detail/spinlock.hpp: weft's one spinlock, a test-and-test-and-set lock for
// critical sections of a few instructions.
//
// Users: the scheduler's registry shards (an intrusive-list splice) and the primitives' waiter
// lists and queue buffers (moving one item, relinking a few waiter nodes). No holder wakes a task,
// runs user code or blocks while holding it; wake-ups are collected under the lock and sent after.
// It is a detail header, installed only because the primitives' templates still name it.
//
// After `spins_before_yield` failed looks the waiter yields its CPU. The holder may have been
// preempted: threads outside the pool take these locks too (foreign spawns, releases from
// to_thread callables), so there can be more runnable threads than cores, and a pure spin then
// burns the rest of a time slice while the holder waits for a CPU. bench/run spawn_remote (a
// foreign thread and 2 workers on 2 cores) spent 93% of the spawning thread's time in this loop
// before the yield was added.
#pragma once

#include <thread>

#include <weft/scheduler/detail/atomic.hpp>

namespace weft::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock()'s release: the previous holder's critical section
      // (list links, node states, moved items) is visible to the next holder.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      // Relaxed: only a hint that the lock may be free; the exchange above decides, and orders.
      for (unsigned spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < spins_before_yield) {
          __builtin_ia32_pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  // Ordering: release publishes the critical section to the next holder's acquire exchange.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr unsigned spins_before_yield = 128;
  atomic<bool> locked_{false};
};

}  // namespace weft::detail
