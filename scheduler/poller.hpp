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
// Descriptors: see io.hpp for the readiness protocol. Deregistered records are freed by the driver
// (below) at the top of its next cycle, after every event that epoll could still report for them
// was processed (their EPOLL_CTL_DEL happened before they were queued for freeing, and any
// epoll_wait that started before the DEL has finished and been dispatched by then: the driver
// role passes with release/acquire, so the next holder sees the previous one's work done).
//
// The driver role (runtime_options::io_driver_in_park). Whoever holds the role may fire timers
// and call epoll_wait; exactly one thread holds it at a time (`role_`). In the classic mode the
// poller thread holds it for ever. In driver-in-park mode a worker with nothing to do takes it
// when it parks and sleeps in epoll_wait itself, so one readiness costs one context switch (the
// worker's own wake-up) instead of two (the poller thread's, then the worker's futex wake), and
// the tasks it finds go onto that worker's own deque (no injection hop). The role holder's
// epoll timeout is the earliest timer, so a parked worker also serves the timer wheel. Since only
// the holder ever waits in epoll_wait, the eventfd reaches exactly the thread that must wake (a
// worker's unpark writes it when that worker is the sleeping driver: parker.hpp); Linux's
// exclusive wake-up of several epoll_wait callers on one epfd never comes into play.
//
// The role is released the moment the holder's epoll_wait returns (before it runs what it
// found). The next worker to park, or a busy worker's maintenance tick (a non-blocking cycle),
// takes it again. The poller thread stays as a watchdog for the moments when no worker can: while
// a worker holds the role the thread sleeps on `role_` (a futex) without a timeout; once the role
// is free it wakes at the earlier of the next timer and `watchdog_interval`, and, if the role is
// still free, runs one non-blocking cycle itself (timers due, readiness pending) and injects what
// it found, the classic path (the interval doubles up to max_watchdog_interval while its cycles
// find nothing, so a pool busy without I/O is not woken a thousand times a second). It never blocks
// in epoll_wait in this mode, so it never keeps the role from a worker that wants to park. The cost
// on the hot path: a worker releasing the role wakes the watchdog only if it is watching (at most
// once per watchdog_interval, since after a wake it first sleeps an interval), so a request pays a
// futex wake at most once a millisecond. The virtual-time, deterministic and traced modes and a
// frame_executor keep the classic mode.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/scheduler/detail/intrusive_list.hpp>
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
  list_links<io_registration> links;  // in the poller's registrations_, guarded by its mutex
  bool orphaned = false;              // the runtime is gone; the io_source frees this record itself
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
    // runtime_options::io_driver_in_park (see the file comment); the runtime clears it for the
    // modes that keep the classic path.
    bool driver_in_park = false;
  };
  // The watchdog's period while the role is free (see the file comment).
  static constexpr std::chrono::milliseconds watchdog_interval{1};
  // Its longest period, while its cycles keep finding nothing (run_watchdog).
  static constexpr std::chrono::milliseconds max_watchdog_interval{16};
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

  // ---- driver-in-park mode (see the file comment) ----
  [[nodiscard]] bool driver_in_park() const noexcept { return driver_in_park_; }
  // Takes the driver role for a worker; false if another thread holds it.
  [[nodiscard]] bool try_acquire_driver() noexcept;
  // The watchdog holds the role now (for one non-blocking cycle).
  [[nodiscard]] bool driver_held_by_poller() const noexcept {
    // Relaxed: a hint for a worker deciding whether to wait for the role; it re-tries the CAS.
    return (role_.load(std::memory_order_relaxed) & role_poller) != 0;
  }
  // Gives the role back (the worker that took it), waking the watchdog if it watches.
  void release_driver() noexcept;
  // With the role held: frees deregistered records, fires due timers (waiters appended to
  // `ready`, callbacks run here), then waits in epoll_wait (until the earliest timer if `block`,
  // not at all otherwise, and not at all if a timer fired) and appends the waiters that readiness
  // resumes. Each waiter is appended exactly once (the slot protocol, io.hpp).
  void drive(std::vector<void*>& ready, std::vector<timer_entry*>& callbacks, bool block);
  // Registered descriptors now (a hint for the busy workers' non-blocking cycle).
  [[nodiscard]] bool has_registrations() const noexcept {
    return registered_.load(std::memory_order_relaxed) != 0;
  }
  // The eventfd that makes the driver's epoll_wait return (a driving worker's unpark writes it).
  [[nodiscard]] int wake_fd() const noexcept { return event_fd_; }

  // After the thread stopped: disconnects every timer entry (so destroying a frame later does not
  // touch the wheel) and every descriptor registration (freed by its io_source, or now if queued).
  void clear_for_shutdown();

 private:
  void run();
  void run_watchdog();
  void wake() noexcept;
  // The earliest timer's deadline in ticks (no_timer if none), as the driver last saw it.
  std::uint64_t next_deadline();
  // epoll_wait on the role holder, dispatching into `ready`. timeout_ns < 0: no timeout.
  void wait_and_dispatch(std::vector<void*>& ready, std::int64_t timeout_ns);
  // The wait until the start of tick `until` (real time), in nanoseconds: 0 if it has begun, -1
  // for no_timer.
  std::int64_t timeout_until(std::uint64_t until) const noexcept;
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
  const bool driver_in_park_;

  // The driver role: role_free, or held by a worker or the poller thread; the watching bit says
  // the watchdog sleeps on this word until a worker releases it. A futex word.
  // Invariant: at most one thread holds the role, so at most one thread is ever inside
  // epoll_wait, fire_timers or free_deregistered. Taken with an acquire CAS from role_free and
  // given back with a release store/exchange: a holder sees everything the previous holder did
  // (its dispatches, its frees), which the deregistration argument above relies on.
  static constexpr std::uint32_t role_free = 0;
  static constexpr std::uint32_t role_worker = 1;
  static constexpr std::uint32_t role_poller = 2;
  static constexpr std::uint32_t role_watching = 4;
  static constexpr std::uint32_t role_stopping = 8;  // stop(): ends the watchdog's untimed wait
  std::atomic<std::uint32_t> role_{role_free};
  // Live registrations (register_fd minus deregister). Relaxed: a hint only; a busy worker that
  // misses a fresh registration leaves its readiness to the next parker or the watchdog.
  std::atomic<std::size_t> registered_{0};
  // The runtime's thread name (start()), and whether its threads got the short time slice, which
  // the first registration gives them (time_slice.hpp). The name is written before the runtime
  // runs any task, so every register_fd (from a task, or from a thread that spawned one after the
  // runtime was made) happens after it.
  std::string thread_name_;
  std::atomic<bool> slices_shortened_{false};

  std::mutex timers_mutex_;
  timer_wheel wheel_;                 // guarded by timers_mutex_
  std::uint64_t sleeping_until_ = 0;  // guarded by timers_mutex_; UINT64_MAX: no timer

  std::mutex registrations_mutex_;
  // Live records, guarded by registrations_mutex_; walked only at shutdown (clear_for_shutdown).
  intrusive_head_list<io_registration, &io_registration::links> registrations_;
  std::vector<io_registration*> to_free_;  // guarded by registrations_mutex_
};

}  // namespace weft::detail
