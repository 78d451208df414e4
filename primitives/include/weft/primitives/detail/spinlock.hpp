// weft/primitives/detail/spinlock.hpp: the lock of the primitives' waiter lists and queue buffers.
//
// A test-and-test-and-set lock for the few instructions of a primitive's slow path: moving one
// item, relinking a few waiter nodes, changing their states. Critical sections never wake a task,
// allocate (except when an unbounded queue's buffer grows) or destroy an item; wake-ups are
// collected under the lock and sent after it is released.
#pragma once

#include <atomic>
#include <thread>

#include <weft/scheduler/detail/atomic.hpp>

namespace weft::detail {

// The same policy as the scheduler's registry lock (scheduler/spinlock.hpp, a private header, so
// not usable from this installed one; a later architecture issue unifies the two): after
// `spins_before_yield` failed looks the waiter yields its CPU. The holder may have been preempted:
// releases and try_acquires come from threads outside the pool too, so there can be more runnable
// threads than cores, and a pure spin then burns the rest of a time slice while the holder waits
// for a CPU (measured on the registry: 93% of a foreign spawning thread's time on 2 cores).
// Keep the two in step until then.
class queue_spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock()'s release: the previous holder's list changes, node
      // states and items are visible to the next holder.
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
  // Ordering: release publishes the critical section to the next holder.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr unsigned spins_before_yield = 128;  // as scheduler/spinlock.hpp
  atomic<bool> locked_{false};
};

}  // namespace weft::detail
