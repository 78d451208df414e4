// scheduler/poller.hpp: the I/O poller thread, which owns the timers and descriptor readiness.
//
// One thread per runtime loops on epoll_wait. Its wake-up sources are an eventfd (written when a
// worker arms a timer earlier than the one the poller sleeps on, and at shutdown), the timeout of
// epoll_wait (the earliest timer), and registered descriptors (edge-triggered). Each loop turns
// expired timers and ready descriptors into runnable tasks and hands them to its host (the pool's
// injection queue) in one batch, with one wake-up of the pool per batch.
//
// The poller knows the pool only through `poller_host`: a batch to run, whether the pool is idle
// (for virtual time), and where to report. It does not include the runtime's core, so another
// readiness backend can stand beside this one behind the same three calls, and the poller's
// tests drive it with a host of their own.
//
// Timers: the wheel (timer_wheel.hpp) is guarded by a mutex that workers take to arm or disarm a
// timer and the poller takes to advance it, in batches of at most `fire_batch` entries. This is a
// deliberate departure from handing registrations over through a lock-free queue: with the lock,
// disarming is synchronous, so the timer entry can live in the sleeping coroutine's frame (no
// allocation per sleep) and be destroyed as soon as disarm returns. With a queue, the frame would
// have to wait for the poller to acknowledge the removal, or the entry would have to be allocated
// and reference-counted. The critical sections are a few list operations; the poller is woken only
// when a new timer is earlier than the deadline it sleeps until (`sleeping_until_`, guarded by the
// same mutex, so the check cannot race with the poller going to sleep).
//
// Descriptors: see io.hpp for the readiness protocol. Deregistered records are freed by the poller
// thread at the top of its next loop, after it has processed every event that epoll could still
// report for them (their EPOLL_CTL_DEL happened before they were queued for freeing, and any
// epoll_wait that started before the DEL has finished by then).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/scheduler/detail/timer_entry.hpp>

#include "timer_wheel.hpp"

namespace weft::detail {

enum class io_direction : unsigned char;

class tracer;

// What the poller needs from the pool it feeds. runtime_core implements it.
class poller_host {
 public:
  // Makes a batch of coroutine addresses runnable, with at most one wake-up of the pool. Called
  // on the poller thread (and on the worker in deterministic mode, which does not go through it).
  virtual void inject_batch(void* const* tasks, std::size_t count) = 0;
  // Every worker is parked and nothing is queued: the only moment virtual time may move, because
  // a task that runs or is queued may still arm an earlier timer.
  [[nodiscard]] virtual bool pool_idle() const noexcept = 0;
  // Reports a failure of the poller (the runtime's log hook, or stderr). Never throws.
  virtual void report(std::string_view message) const noexcept = 0;

 protected:
  poller_host() = default;
  ~poller_host() = default;
  poller_host(const poller_host&) = default;
  poller_host& operator=(const poller_host&) = default;
};

struct io_registration {
  static constexpr std::uintptr_t idle = 0;
  static constexpr std::uintptr_t ready = 1;
  static constexpr std::uintptr_t cancelled = 2;  // io_cancel ran before anyone parked
  // Per direction: idle, ready (an edge arrived while nobody waited), cancelled (a cancellation
  // arrived before the waiter parked), or the waiting coroutine's address. Transitions: the waiter
  // CASes idle->address, consumes ready->idle, or turns cancelled->ready (an edge may have been
  // missed meanwhile; a spurious "ready" only costs one syscall); the poller swaps address->idle
  // (and resumes the waiter) or idle->ready, and leaves cancelled alone; io_cancel CASes
  // address->idle or idle->cancelled.
  std::atomic<std::uintptr_t> waiters[2] = {idle, idle};
  int fd = -1;
  class poller* owner = nullptr;
  // Guarded by the poller's registrations mutex.
  io_registration* prev = nullptr;
  io_registration* next = nullptr;
  bool orphaned = false;  // the runtime is gone; the io_source frees this record itself
};

class poller {
 public:
  static constexpr std::size_t fire_batch = 4096;

  struct config {
    bool virtual_time = false;  // runtime_options::virtual_time
    // Deterministic mode (simulation.hpp): the worker moves the virtual clock itself
    // (advance_deterministic), so this thread never does.
    bool deterministic = false;
    // The trace file's recorder (trace.hpp), or null: timers fired and descriptors ready.
    tracer* trace = nullptr;
  };
  poller(poller_host& host, config cfg);
  ~poller();
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  void start(const std::string& thread_name);
  // Stops and joins the thread. Timers and registrations stay (see clear_for_shutdown).
  void stop();

  // Milliseconds since the runtime's epoch (virtual ticks with runtime_options::virtual_time).
  [[nodiscard]] std::uint64_t now_tick() const noexcept;
  // The runtime's current time as a time point.
  [[nodiscard]] clock::time_point now() const noexcept;
  // Virtual time only: the pool just became idle; let the poller advance the clock.
  void pool_went_idle() noexcept { wake(); }
  [[nodiscard]] bool virtual_time() const noexcept { return virtual_; }
  [[nodiscard]] std::uint64_t tick_of(clock::time_point when) const noexcept;
  // Deterministic mode, on the worker thread when nothing is runnable (simulation.hpp): moves the
  // virtual clock to the next deadline and fires every timer due then, appending the waiting
  // coroutines to `ready` and the callback entries (timeouts) to `callbacks`, marked as firing;
  // the caller runs each with fire_callback. False if no timer is armed.
  bool advance_deterministic(std::vector<void*>& ready, std::vector<timer_entry*>& callbacks);
  static void fire_callback(timer_entry* entry) noexcept;

  arm_result arm(timer_entry* entry, clock::time_point when);
  bool cancel(timer_entry* entry) noexcept;  // see cancel_timer
  bool disarm(timer_entry* entry) noexcept;
  [[nodiscard]] std::size_t timer_count();

  io_registration* register_fd(int fd);
  void deregister(io_registration* reg) noexcept;

  // After the thread stopped: disconnects every timer entry (so destroying a frame later does not
  // touch the wheel) and every descriptor registration (freed by its io_source, or now if queued).
  void clear_for_shutdown();

 private:
  void run();
  void wake() noexcept;
  void fire_timers(std::vector<void*>& ready, std::vector<timer_entry*>& callbacks, bool& more);
  void dispatch_io(io_registration* reg, std::uint32_t events, std::vector<void*>& ready);
  void free_deregistered();

  // Advances the virtual clock to the next deadline if every worker is idle; true if it did.
  bool advance_virtual_time();

  poller_host& host_;
  clock::time_point epoch_;
  const bool virtual_;
  const bool deterministic_;
  tracer* const trace_;
  // Virtual time: milliseconds since epoch_, written by the poller thread only (by the worker
  // instead in deterministic mode, where the poller leaves it alone).
  std::atomic<std::uint64_t> virtual_ticks_{0};
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  std::mutex timers_mutex_;
  timer_wheel wheel_;                 // guarded by timers_mutex_
  std::uint64_t sleeping_until_ = 0;  // guarded by timers_mutex_; UINT64_MAX: no timer

  std::mutex registrations_mutex_;
  io_registration* registrations_ = nullptr;  // live records, guarded by registrations_mutex_
  std::vector<io_registration*> to_free_;     // guarded by registrations_mutex_
};

}  // namespace weft::detail
