// scheduler/spinlock.hpp: a test-and-test-and-set lock for critical sections of a few instructions.
//
// Used where a std::mutex's fast path would be acceptable but its size and its syscall-capable slow
// path are not needed: the registry shards hold it for an intrusive-list splice.
//
// After `spins_before_yield` failed looks the waiter yields its CPU. The holder may have been
// preempted: the shared shard is taken by threads outside the pool (foreign spawns) as well as by
// the workers, so there can be more runnable threads than cores, and a pure spin then burns the
// rest of a time slice while the holder waits for a CPU. bench/run spawn_remote (a foreign thread
// and 2 workers on 2 cores) spent 93% of the spawning thread's time in this loop before the yield.
// primitives/include/weft/primitives/detail/spinlock.hpp (queue_spinlock, installed) follows the
// same policy; keep the two in step until they are unified.
#pragma once

#include <atomic>
#include <thread>

namespace weft::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock()'s release, making the previous holder's writes
      // visible.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (unsigned spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < spins_before_yield) {
          __builtin_ia32_pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  // Ordering: release pairs with lock()'s acquire exchange: the critical section happens before
  // the next holder's.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr unsigned spins_before_yield = 128;
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
