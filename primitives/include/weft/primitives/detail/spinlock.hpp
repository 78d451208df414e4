// weft/primitives/detail/spinlock.hpp: the lock of the primitives' waiter lists and queue buffers.
//
// A test-and-test-and-set lock for the few instructions of a primitive's slow path: moving one
// item, relinking a few waiter nodes, changing their states. Critical sections never wake a task,
// allocate (except when an unbounded queue's buffer grows) or destroy an item; wake-ups are
// collected under the lock and sent after it is released.
#pragma once

#include <atomic>

#include <weft/scheduler/detail/atomic.hpp>

namespace weft::detail {

class queue_spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock()'s release: the previous holder's list changes, node
      // states and items are visible to the next holder.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed))
        __builtin_ia32_pause();
    }
  }
  // Ordering: release publishes the critical section to the next holder.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  atomic<bool> locked_{false};
};

}  // namespace weft::detail
