// weft/scheduler/detail/timer_entry.hpp: a timer as the timer wheel sees it.
//
// The entry lives inside the awaiter, hence inside the sleeping coroutine's frame: arming a timer
// allocates nothing. The wheel links it into one of its slots; every field below except `waiter`
// and `deadline` is owned by the wheel and read or written only under the wheel's lock.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <type_traits>

#include <time.h>

#include <weft/scheduler/detail/intrusive_list.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::detail {

class runtime_core;
class task_header;

struct timer_entry {
  // What expiry does: resume `waiter`, or, for a callback_timer_entry (has_callback), call its
  // on_fire on the thread that holds the I/O driver role: the poller thread, or a worker parked
  // in epoll_wait (a timeout cancelling its task). on_fire must be short and must not block.
  using fire_fn = void (*)(timer_entry* self) noexcept;
  list_links<timer_entry> links;  // in a slot of the wheel, or in its far list (timer_wheel.hpp)
  std::uint64_t deadline = 0;     // milliseconds since the runtime's epoch, rounded up
  std::coroutine_handle<> waiter;
  runtime_core* owner = nullptr;
  // True while the poller runs on_fire; disarm waits for it to return, since the caller is about
  // to destroy the entry. Set under the wheel's lock together with clearing `linked`. (Placed with
  // the small fields so that the entry, which lives in a sleeping task's frame, packs to 56 bytes.)
  std::atomic<bool> firing{false};
  std::uint8_t level = 0;
  std::uint8_t slot = 0;
  // Set (under the wheel's lock) by cancel_timer on an entry that is not armed yet: the arm that
  // follows refuses, so a cancellation that races with arming is never lost.
  bool cancelled = false;
  // Invariant: true exactly while the entry is linked into the wheel. Cleared under the wheel's
  // lock before the waiter is scheduled, so the resumed waiter (which synchronizes with the
  // scheduling through the run queues) reads false without taking the lock.
  bool linked = false;
  // Set once at construction by callback_timer_entry. (The callback itself lives there, not here:
  // a plain sleep's entry, one per sleeping task, stays 48 bytes.)
  bool has_callback = false;
};

// A timer whose expiry calls `on_fire` on the I/O driver's thread (the poller thread or a driving
// worker) instead of resuming a coroutine.
struct callback_timer_entry : timer_entry {
  explicit callback_timer_entry(fire_fn fn = nullptr) noexcept : on_fire(fn) {
    has_callback = true;
  }
  fire_fn on_fire;
};
// lazy_timeout keeps one in a union without a destructor of its own.
static_assert(std::is_trivially_destructible_v<callback_timer_entry>);

using clock = std::chrono::steady_clock;

// The timer of one weft::timeout (primitives/timeout.hpp), in the awaiter of the timeout, hence in
// the awaiting frame. It is armed lazily (task_header::timeout_to_arm, arm_lazy_timeout): only when
// the task reaches a cancellation point inside the timeout. Its expiry records `fired` and
// requests cancellation of `root`.
struct lazy_timeout {
  lazy_timeout() noexcept {}  // not `= default`: the union member stays unconstructed
  // First: on_fire receives the entry's address, the timeout's. Constructed by arm_timeout_now,
  // at every arming, and not before: most timeouts end before their work reaches a cancellation
  // point and are never armed, and the entry's dozen stores were about 4% of such a timeout's
  // time (docs/architecture.md, Timeouts). Read only while `armed` (leave, reschedule) or by the
  // wheel once linked. Trivially destructible, so the union needs no destructor.
  union {
    callback_timer_entry entry;
  };
  // root, deadline, after and relative are written by the timeout when it is entered (before the
  // timer can be armed, hence before anyone else reads them) and not before: a timeout that is
  // made and entered at once would otherwise write each twice (an unarmed timeout's cost is
  // mostly such stores: docs/architecture.md, Measurements).
  // The task to cancel (null: the timeout is not part of a spawned task, nothing to time); then
  // only read.
  task_header* root;
  // The expiry. For a relative timeout (timeout(d), wait_for: `relative`) it is first an upper
  // bound, `after` past a coarse reading of the start (timeout_start_bound), and arming refines it
  // to the exact deadline it stands for (arm_timeout_now).
  clock::time_point deadline;
  // The duration of a relative timeout; meaningful while `relative` is set. Task-local, as armed.
  clock::duration after;
  // Invariant: true once the expiry requested its cancellation (at most once). Written by the
  // I/O driver's thread (on_fire) or by the task itself (a deadline already due when armed); read
  // by the task after disarm_timer returned. Ordering: release here, acquire there; disarm_timer's
  // acquire of `entry.firing` already orders an on_fire that ran concurrently before the read.
  std::atomic<bool> fired{false};
  // The timer went to the wheel (or fired at arming). Task-local, like timeout_to_arm.
  bool armed = false;
  // `deadline` is still the bound of a relative timeout, refined when it is armed (then cleared:
  // a deadline once armed, or set by timeout_scope::reschedule, is exact). Task-local.
  bool relative;
};

// Arms `timeout` of `task` now, whatever the task's pending lazy timeout (timeout_scope::reschedule
// from inside the work): a deadline that has passed fires at once, on the calling thread, and the
// cancellation it requests is delivered at the task's next cancellation point. Called by the task
// itself; the entry is not linked (never armed, or taken out by disarm_timer). Defined in
// timers.cpp, as arm_lazy_timeout (task_header.hpp), which arms the pending one through it.
WEFT_API void arm_timeout_now(task_header* task, lazy_timeout* timeout) noexcept;

// The time of the calling worker's runtime (virtual or real); clock::now() outside a runtime.
WEFT_API clock::time_point runtime_now() noexcept;

// Pollers on virtual time, constructed and not yet destroyed (poller.cpp). Ordering: relaxed; a
// poller on virtual time is counted before its runtime's first task exists, so a task of that
// runtime never reads 0, and a task of another runtime that reads a count above 0 only takes the
// longer way, which is correct for every runtime.
WEFT_API extern std::atomic<int> virtual_time_pollers;
// Four of the coarse clock's steps (scheduler/timers.cpp), read once at load.
WEFT_API extern const clock::duration coarse_clock_margin;
// timeout_start_bound while some runtime is on virtual time.
WEFT_API clock::time_point virtual_timeout_start_bound() noexcept;

// A time no earlier than now on the calling worker's runtime clock: a coarse clock reading plus
// four of its steps (a kernel tick is 1-4 ms), so at most 16 ms later. What timeout(d) reads at its
// start instead of now(), for a seventh of the cost; arm_timeout_now narrows the deadline when it
// arms the timer (lazy_timeout::relative). The bound holds as long as the kernel's coarse clock
// lags by less than four ticks (scheduler/timers.cpp). Exactly now on virtual time. Inline: it is
// on the path of every timeout, where a call into the library cost a tenth of the timeout's price.
inline clock::time_point timeout_start_bound() noexcept {
  if (virtual_time_pollers.load(std::memory_order_relaxed) != 0) [[unlikely]]
    return virtual_timeout_start_bound();
  timespec coarse{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &coarse);
  return clock::time_point(std::chrono::seconds(coarse.tv_sec) +
                           std::chrono::nanoseconds(coarse.tv_nsec) + coarse_clock_margin);
}

enum class arm_result {
  armed,      // the timer will fire at its deadline
  due,        // the deadline has passed: nothing was armed
  cancelled,  // cancel_timer ran first: nothing was armed
};

// Arms `entry` to fire at `when` on the calling worker's runtime (std::logic_error outside one).
WEFT_API arm_result arm_timer(timer_entry* entry, clock::time_point when);

// For a cancellation: disarms `entry` if it is armed (true: the caller now owns the resumption),
// or, if it is not armed yet, makes the coming arm_timer refuse (false).
WEFT_API bool cancel_timer(runtime_core* rt, timer_entry* entry) noexcept;

// Disarms `entry` if it is still armed; afterwards the wheel no longer refers to it, and no on_fire
// call for it is running. True if this call disarmed it (so the timer will not resume the waiter
// or call on_fire); false if it had fired already.
// `rt` is the runtime the entry was armed on (or null: nothing to do).
WEFT_API bool disarm_timer(runtime_core* rt, timer_entry* entry) noexcept;

}  // namespace weft::detail
