// scheduler/timers.cpp: the timer entry points that sleep, timeouts and wait call (declared in
// timer_entry.hpp): arming and cancelling an entry on the calling worker's runtime, the runtime's
// clock, and the lazily armed timer of weft::timeout. The wheel itself is timer_wheel.cpp, its
// thread poller.cpp.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/timer_entry.hpp>

#include <chrono>
#include <new>
#include <stdexcept>

#include <time.h>

#include <weft/scheduler/detail/duration.hpp>

#include "runtime_core.hpp"

namespace weft::detail {

clock::time_point runtime_now() noexcept {
  worker* self = current_worker();
  return self != nullptr ? self->runtime().poller.now() : clock::now();
}

namespace {
// The margin that makes a coarse reading an upper bound of now: four of the coarse clock's steps
// (the kernel's tick, 4 ms here). CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC (steady_clock's
// clock) as of the last tick: at most now, and behind by up to a step, more when a tick comes late
// (5.5 ms was the largest lag in 3 million readings on this 2-vCPU VM at load 13). Read once.
clock::duration coarse_margin() noexcept {
  timespec resolution{};
  clock_getres(CLOCK_MONOTONIC_COARSE, &resolution);
  return 4 *
         (std::chrono::seconds(resolution.tv_sec) + std::chrono::nanoseconds(resolution.tv_nsec));
}
}  // namespace

std::atomic<int> virtual_time_pollers{0};
const clock::duration coarse_clock_margin = coarse_margin();

arm_result arm_timer(timer_entry* entry, clock::time_point when) {
  worker* self = current_worker();
  if (self == nullptr) throw std::logic_error("weft::sleep called outside a weft runtime");
  entry->owner = &self->runtime();
  return entry->owner->poller.arm(entry, when);
}

bool cancel_timer(runtime_core* rt, timer_entry* entry) noexcept {
  return rt != nullptr && rt->poller.cancel(entry);
}

bool disarm_timer(runtime_core* rt, timer_entry* entry) noexcept {
  return rt != nullptr && rt->poller.disarm(entry);
}

clock::time_point virtual_timeout_start_bound() noexcept {
  worker* self = current_worker();
  if (self != nullptr && self->runtime().poller.virtual_time()) return self->runtime().poller.now();
  // A real-time runtime while another one is on virtual time: the coarse reading, as inline.
  // 7 ns against the fine clock's 55 ns on this VM's kvm-clock (the coarse clock is a read of the
  // vDSO page, no pvclock arithmetic).
  timespec coarse{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &coarse);
  return clock::time_point(std::chrono::seconds(coarse.tv_sec) +
                           std::chrono::nanoseconds(coarse.tv_nsec) + coarse_clock_margin);
}

namespace {
// on_fire of a lazy_timeout: on the poller thread, or on the task's own thread when the deadline
// had passed at arming.
void fire_lazy_timeout(timer_entry* entry) noexcept {
  // entry is the first member of lazy_timeout (timer_entry.hpp).
  auto* timeout = reinterpret_cast<lazy_timeout*>(entry);
  // Ordering: release, read by the task (acquire) after disarm_timer; see lazy_timeout::fired.
  timeout->fired.store(true, std::memory_order_release);
  request_cancel(timeout->root);
}
}  // namespace

void arm_timeout_now(task_header* task, lazy_timeout* timeout) noexcept {
  timeout->armed = true;
  // A fresh entry at every arming (lazy_timeout::entry): the first, or one that disarm_timer took
  // out of the wheel (unlinked, no on_fire running), so nothing refers to the old one.
  new (&timeout->entry) callback_timer_entry(&fire_lazy_timeout);
  // The task runs on a worker of its own runtime. Arming takes the wheel's lock; once the entry is
  // linked, the poller may fire it at any moment: that only touches `fired` and the task's header,
  // and the awaiter is not destroyed before its disarm_timer waited for the callback. (An entry
  // taken out by disarm_timer, timeout_scope::reschedule, is unlinked and may be armed again.)
  timeout->entry.owner = task->runtime();
  if (timeout->relative) {
    // timeout(d) began at a time S that the awaiter did not read exactly (a fine clock read costs
    // 55 ns on kvm-clock, more than all the rest of a timeout): it stored `deadline` = B + d, B an
    // upper bound of S (timeout_start_bound: a coarse reading plus four ticks). S is also at most
    // now, so min(B, now) + d is never early. It is exact to within the time from S to here when
    // the first cancellation point comes before B (the usual case: soon after the start), and at
    // most the margin late for work that computes longer than that before its first point. On
    // virtual time B is S itself, and the min keeps it.
    timeout->relative = false;
    const clock::time_point exact = saturating_add(task->runtime()->poller.now(), timeout->after);
    if (exact < timeout->deadline) timeout->deadline = exact;
  }
  if (task->runtime()->poller.arm(&timeout->entry, timeout->deadline) != arm_result::armed) {
    fire_lazy_timeout(&timeout->entry);  // due already (cancel_timer is never used on these)
  }
}

void arm_lazy_timeout(task_header* task) noexcept {
  lazy_timeout* timeout = task->unarmed_timeout();
  task->unarmed_timeout() = nullptr;
  arm_timeout_now(task, timeout);
}

}  // namespace weft::detail
