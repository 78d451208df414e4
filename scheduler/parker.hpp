// scheduler/parker.hpp: puts one worker thread to sleep until another thread unparks it.
//
// A token, as in Rust's thread::park: unpark() before park() makes park() return at once, so the
// race between "decide to sleep" and "someone wakes me" cannot lose the wake-up. The state word is
// a futex; a wake costs one syscall only when the worker really sleeps.
//
//   empty --park()--> parked --unpark()--> notified --(park returns)--> empty
//   empty --unpark()--> notified --park() returns at once--> empty
//
// A worker that holds the I/O driver role (poller.hpp) sleeps in epoll_wait instead of on the
// futex: begin_driving() moves empty -> driving, and unpark() of a driving worker writes the
// poller's eventfd (set_driver_wake_fd) instead of a futex wake, which makes that epoll_wait
// return. Only the role holder ever waits in epoll_wait, so the eventfd wakes exactly this worker.
//   empty --begin_driving()--> driving --unpark()--> notified --end_driving()--> empty
//   driving --end_driving() (readiness, a timer)--> empty
// A write that lands after end_driving leaves the eventfd readable: the next driver returns from
// epoll_wait once at once and drains it (a spurious wake-up, never a lost one).
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

  // Driver-in-park (owner thread only). begin_driving: false (and the token consumed) if an
  // unpark came first, else the worker may sleep in epoll_wait until end_driving.
  bool begin_driving() noexcept;
  // True if unpark() was called since begin_driving (the driver should stop waiting).
  [[nodiscard]] bool driving_notified() const noexcept;
  void end_driving() noexcept;
  // The poller's eventfd; set before the worker's thread starts.
  void set_driver_wake_fd(int fd) noexcept { driver_wake_fd_ = fd; }

 private:
  static constexpr std::uint32_t empty = 0;
  static constexpr std::uint32_t parked = 1;
  static constexpr std::uint32_t notified = 2;
  static constexpr std::uint32_t driving = 3;
  int driver_wake_fd_ = -1;
  atomic<std::uint32_t> state_{empty};
};

// Futex wrappers shared with other blocking spots of the scheduler. (Under WEFT_MODEL_CHECK they
// are the model checker's blocking futex.)
void futex_wait(atomic<std::uint32_t>* word, std::uint32_t expected) noexcept;
void futex_wake_all(atomic<std::uint32_t>* word) noexcept;
void futex_wake_one(atomic<std::uint32_t>* word) noexcept;

}  // namespace weft::detail
