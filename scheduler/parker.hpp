// scheduler/parker.hpp: puts one worker thread to sleep until another thread unparks it.
//
// A token, as in Rust's thread::park: unpark() before park() makes park() return at once, so the
// race between "decide to sleep" and "someone wakes me" cannot lose the wake-up. The state word is
// a futex; a wake costs one syscall only when the worker really sleeps.
//
//   empty --park()--> parked --unpark()--> notified --(park returns)--> empty
//   empty --unpark()--> notified --park() returns at once--> empty
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/scheduler/detail/atomic.hpp>

namespace weft::detail {

class parker {
 public:
  // Blocks until unpark() was called (possibly before this call). Owner thread only.
  void park() noexcept;
  // Any thread.
  void unpark() noexcept;

 private:
  static constexpr std::uint32_t empty = 0;
  static constexpr std::uint32_t parked = 1;
  static constexpr std::uint32_t notified = 2;
  atomic<std::uint32_t> state_{empty};
};

// Futex wrappers shared with other blocking spots of the scheduler. (Under WEFT_MODEL_CHECK they
// are the model checker's blocking futex.)
void futex_wait(atomic<std::uint32_t>* word, std::uint32_t expected) noexcept;
void futex_wake_all(atomic<std::uint32_t>* word) noexcept;
void futex_wake_one(atomic<std::uint32_t>* word) noexcept;

}  // namespace weft::detail
