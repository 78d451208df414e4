// scheduler/spinlock.hpp: a test-and-test-and-set lock for critical sections of a few instructions.
//
// Used where a std::mutex's fast path would be acceptable but its size and its syscall-capable slow
// path are not needed: the registry shards hold it for an intrusive-list splice.
#pragma once

#include <atomic>

namespace weft::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock()'s release, making the previous holder's writes
      // visible.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed))
        __builtin_ia32_pause();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
