// scheduler/timers.cpp: the timer entry points that sleep, timeouts and wait call (declared in
// timer_entry.hpp): arming and cancelling an entry on the calling worker's runtime, the runtime's
// clock, and the lazily armed timer of weft::timeout. The wheel itself is timer_wheel.cpp, its
// thread poller.cpp.
#include <weft/scheduler/detail/timer_entry.hpp>

#include <stdexcept>

#include "runtime_core.hpp"

namespace weft::detail {

clock::time_point runtime_now() noexcept {
  worker* self = current_worker();
  return self != nullptr ? self->runtime().poller.now() : clock::now();
}

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
  timeout->entry.on_fire = &fire_lazy_timeout;
  // The task runs on a worker of its own runtime. Arming takes the wheel's lock; once the entry is
  // linked, the poller may fire it at any moment: that only touches `fired` and the task's header,
  // and the awaiter is not destroyed before its disarm_timer waited for the callback. (An entry
  // taken out by disarm_timer, timeout_scope::reschedule, is unlinked and may be armed again.)
  timeout->entry.owner = task->runtime;
  if (task->runtime->poller.arm(&timeout->entry, timeout->deadline) != arm_result::armed) {
    fire_lazy_timeout(&timeout->entry);  // due already (cancel_timer is never used on these)
  }
}

void arm_lazy_timeout(task_header* task) noexcept {
  lazy_timeout* timeout = task->timeout_to_arm;
  task->timeout_to_arm = nullptr;
  arm_timeout_now(task, timeout);
}

}  // namespace weft::detail
