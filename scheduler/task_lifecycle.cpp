// scheduler/task_lifecycle.cpp: the life of a spawned task, from the runtime's side (tokio calls
// this part its harness): spawn_root publishes it, finish_root/complete_root publish its end and
// wake its waiter and group, release_root is its handle letting go, request_cancel and
// withdraw_cancel_request move its cancellation word, wake schedules a suspended coroutine, and
// block_until_finished waits for it from a thread outside the pool. The ownership protocol these
// follow is in task_header.hpp; the shutdown sweep that abandons tasks is in runtime.cpp.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#include <weft/scheduler/errors.hpp>

#include "runtime_core.hpp"

namespace weft::detail {

namespace {
std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}
}  // namespace

void spawn_root(runtime_core* rt, task_header* task, bool eager) {
  worker* self = current_worker();
  if (rt == nullptr) {
    if (self != nullptr) {
      rt = &self->runtime();
    } else if (sweeping != nullptr) {
      rt = sweeping;  // a frame destructor of the shutdown sweep spawns
    } else {
      throw std::logic_error(
          "weft::spawn called outside a weft runtime; use runtime::spawn from other threads");
    }
  }
  task->set_runtime(rt);
  // Deterministic mode logs the spawn (simulation.hpp); one predictable branch otherwise.
  if (rt->sim != nullptr) [[unlikely]]
    rt->sim->spawned(task->frame().address(), rt->poller.now_tick());
  if (self != nullptr && &self->runtime() == rt) {
    // A worker of this runtime. The task is `listed` from here on, but linked into a shard only
    // by the worker that starts it (registry.hpp): an eager one by this worker now, any other by
    // whoever takes it from a queue (worker::adopt). Not yet visible to any other thread: the push
    // publishes it (release).
    task->state_word().store(task_header::listed_bit, std::memory_order_relaxed);
    worker_counters::bump(self->counters.spawned);
    if (rt->trace != nullptr) [[unlikely]]
      rt->trace->spawned(self, task->frame().address(), task->name(), eager);
    if (!eager) {
      // During shutdown's graceful phase the adopting worker sees `closing` (this push publishes
      // what this thread saw) and starts the task cancelled. Counted before the push, as a
      // foreign spawn before its injection (unlisted_queued()).
      self->count_unlisted_spawn();
      self->push_local(unlisted_item(task));
      return;
    }
    // During shutdown's graceful phase the new task starts cancelled: it runs to its first
    // cancellation point and ends there (a task cleaning up after its own cancellation may spawn;
    // an exception here could escape a destructor). Ordering: the acquire in closing() pairs
    // with shutdown's seq_cst store.
    if (rt->closing()) [[unlikely]] {
      task->cancel_word().store(task_header::cancel_pending | task_header::cancel_request,
                                std::memory_order_relaxed);
    }
    registry::insert(rt->registry.worker_shard(self->index()), task);
    self->run_eager(task->frame().address());
    return;
  }
  if (sweeping == rt) {
    // The sweep destroys frames on this thread, and one of them spawns from its destructor: the
    // task is abandoned at once (never runs; its handle reports runtime_stopped and frees it).
    task->state_word().store(task_header::abandoned_bit, std::memory_order_relaxed);
    return;  // never listed: its shard stays null, so no registry unlinks it
  }
  // Another thread (or another runtime's worker). As above, the worker that takes it from the
  // queue lists it in its own shard (registry.hpp), and until then unlisted_queued() counts it.
  // The foreign shard's lock is held from the `closing` check to the
  // count and the injection (only other foreign spawns and shutdown take it), so shutdown, which
  // takes it after setting `closing`, either finds the task counted and queued (a worker adopts
  // it and cancels it, or the sweep finds it in the stopped queues) or this spawn sees `closing`
  // and refuses; and the runtime cannot be freed while a spawn is half done.
  registry_shard& shard = rt->registry.foreign_shard();
  shard.lock.lock();
  if (rt->closing()) {
    shard.lock.unlock();
    throw runtime_stopped("weft: spawn on a runtime that is shutting down");
  }
  // `listed`, with the shard still null: the adopting worker links the task before it can run,
  // and unlinks it (or has it unlinked) as any task of its shard. Not yet visible to any other
  // thread: the injection below publishes it (release).
  task->state_word().store(task_header::listed_bit, std::memory_order_relaxed);
  if (rt->trace != nullptr) [[unlikely]]  // before the task can run (trace.hpp)
    rt->trace->spawned(self, task->frame().address(), task->name(), false);
  // Counted before the injection: the adoption that follows it (through the queue's release and
  // acquire) never finds the count behind (unlisted_queued()).
  rt->foreign_spawned.fetch_add(1, std::memory_order_relaxed);
  try {
    rt->inject(unlisted_item(task));
  } catch (...) {
    // Out of memory in the injection queue: the caller keeps the frame, unqueued.
    rt->foreign_spawned.fetch_sub(1, std::memory_order_relaxed);
    task->state_word().store(0, std::memory_order_relaxed);
    shard.lock.unlock();
    throw;
  }
  shard.lock.unlock();
}

namespace {
void report_unretrieved(runtime_core* rt, task_header* task) noexcept {
  // A task that ended cancelled did what it was asked; asyncio does not log those either.
  if (task->ended_cancelled()) return;
  rt->report_composed([task] {
    return std::string("weft: a detached task") +
           (task->name() != nullptr ? std::string(" '") + task->name() + "'" : std::string()) +
           " ended with an exception nobody retrieved: " + describe(task->exception());
  });
}

void report_unretrieved_if_alive(task_header* task) noexcept {
  runtime_core* rt = task->runtime();
  {
    // The lock only pins the runtime (shutdown waits for `reporters` to drain after it leaves
    // live_runtimes); the report runs without it, so a log hook that drops a failed task's handle,
    // and so reports again, does not deadlock on this lock (it did).
    std::lock_guard lock(live_runtimes_mutex);
    if (std::find(live_runtimes.begin(), live_runtimes.end(), rt) == live_runtimes.end()) return;
    // Ordering: relaxed under the lock; shutdown reads it after taking the same lock.
    rt->reporters.fetch_add(1, std::memory_order_relaxed);
  }
  report_unretrieved(rt, task);
  // Ordering: release, so the report's reads of the runtime happen before shutdown's acquire load
  // sees zero and goes on to free it.
  rt->reporters.fetch_sub(1, std::memory_order_release);
}
}  // namespace

namespace {
// Runs `waiter`'s notify and returns what the completing thread resumes by symmetric transfer:
// the waiter's coroutine if this thread is a worker of the waiter's runtime, else nothing (the
// coroutine is queued on its own runtime: a task never runs on another runtime's threads).
std::coroutine_handle<> notify_waiter(join_waiter* waiter, task_header* task,
                                      worker* self) noexcept {
  runtime_core* home = waiter->home;  // read first: notify may end the waiter's lifetime
  const std::coroutine_handle<> next = waiter->notify(waiter, task);
  if (next == std::noop_coroutine() || home == nullptr ||
      (self != nullptr && &self->runtime() == home)) {
    return next;
  }
  wake(home, next);
  return std::noop_coroutine();
}
}  // namespace

std::coroutine_handle<> finish_root(task_header* task) noexcept {
  runtime_core* rt = task->runtime();
  worker* self = current_worker();
  const bool on_own_runtime = self != nullptr && &self->runtime() == rt;
  if (on_own_runtime) {
    worker_counters::bump(self->counters.completed);
  } else {
    rt->foreign_completed.fetch_add(1, std::memory_order_relaxed);
  }
  if (task->exception()) {
    try {
      std::rethrow_exception(task->exception());
    } catch (const cancelled_error&) {
      task->set_ended_cancelled(rt->closing());  // published with `done` below
    } catch (...) {
    }
  }
  if (rt->options.debug && task->cancel_delivered() && !task->exception() &&
      task->cancel_word().load(std::memory_order_relaxed) >= task_header::cancel_request) {
    rt->report_composed([task] {
      return std::string("weft debug: task") +
             (task->name() != nullptr ? std::string(" '") + task->name() + "'" : std::string()) +
             " finished normally after a cancellation was delivered to it: it swallowed the "
             "cancellation (rethrow cancelled_error after cleaning up)";
    });
  }
  registry_shard* shard = task->shard();
  const bool can_unlink =
      shard->shared || (on_own_runtime && shard == &rt->registry.worker_shard(self->index()));
  std::uintptr_t before = 0;
  if (can_unlink) {
    registry::unlink(task);
    // Ordering: acq_rel (task_header.hpp). Sets done and clears listed in one step: release
    // publishes the result and `exception`, acquire makes a waiter registered by a release CAS
    // visible here.
    before = task->state_word().fetch_xor(task_header::done_bit | task_header::listed_bit,
                                          std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0) {
      if (task->exception()) report_unretrieved(rt, task);
      task->frame().destroy();
      return std::noop_coroutine();
    }
  } else {
    // Completed away from its shard's owner (it moved after its first run): `listed` stays set,
    // so nobody destroys the frame until the owner has unlinked it; that keeps `task` valid
    // through the end of this call.
    // Ordering: acq_rel, as the fetch_xor above: release publishes the result to whoever sees
    // `done`, acquire makes a waiter registered by a release CAS readable here.
    before = task->state_word().fetch_or(task_header::done_bit, std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0 && task->exception())
      report_unretrieved(rt, task);
    // A waiter implies a live join_handle (not detached), which also keeps the frame alive after
    // the owner unlinks it.
    auto* waiter = reinterpret_cast<join_waiter*>(before & ~task_header::flag_mask);
    registry::push_remote(task);
    return waiter != nullptr ? notify_waiter(waiter, task, self) : std::noop_coroutine();
  }
  if (auto* waiter = reinterpret_cast<join_waiter*>(before & ~task_header::flag_mask)) {
    return notify_waiter(waiter, task, self);
  }
  return std::noop_coroutine();
}

// Completion proper (finish_root), then the task's group, if any. Both may have a coroutine to
// resume: the first goes by symmetric transfer, the other through the LIFO slot.
std::coroutine_handle<> complete_root(task_header* task) noexcept {
  group_link* group = task->group();  // read first: without a group the frame may die below
  runtime_core* rt = task->runtime();
  // A task ending away from home (weft::resume_on) leaves this runtime's visitors first, while
  // its frame is alive; its home stays alive until returned() below (visitors.hpp).
  runtime_core* home = nullptr;
  if (task->visiting()) [[unlikely]]
    home = rt->visitors.leave(task);
  // Deterministic mode logs the end while the frame is alive (simulation.hpp).
  if (rt->sim != nullptr) [[unlikely]]
    rt->sim->completed(task->frame().address(), rt->poller.now_tick());
  if (rt->trace != nullptr) [[unlikely]]
    rt->trace->completed(current_worker(), task->frame().address());
  std::coroutine_handle<> next = finish_root(task);
  if (group != nullptr) {
    if (const std::coroutine_handle<> joiner = group->child_done(group, task);
        joiner != std::noop_coroutine()) {
      // The joiner runs where it waits (the group is alive until it resumes).
      runtime_core* joiner_rt = group->joiner_home != nullptr ? group->joiner_home : rt;
      worker* self = current_worker();
      if (next == std::noop_coroutine() && self != nullptr && &self->runtime() == joiner_rt) {
        next = joiner;
      } else {
        wake(joiner_rt, joiner);
      }
    }
  }
  if (home != nullptr) home->visitors.returned();
  return next;
}

void release_root(task_header* task, bool result_taken, bool explicit_detach) noexcept {
  // Read before the RMW: once `detached` is set, a running task may finish and free its frame.
  // Atomically: a running task may move to another runtime meanwhile (resume_on writes the field
  // with the same atomic_ref); either value names a live runtime (visitors.hpp).
  runtime_core* rt = task->runtime_ref().load(std::memory_order_relaxed);
  const char* name = task->name();
  // An exception never retrieved is reported while this handle still keeps the frame alive: once
  // `detached` is set, a task that completed on another worker (done, still listed) may be
  // destroyed at any moment by its shard's owner (registry::drain_remote).
  bool reported = false;
  // Ordering: acquire pairs with finish_root's release RMW, so `exception` is readable once
  // `done` is seen.
  if (!result_taken &&
      (task->state_word().load(std::memory_order_acquire) & task_header::done_bit) != 0 &&
      task->exception()) {
    report_unretrieved_if_alive(task);
    reported = true;
  }
  // Ordering: acq_rel, see task_header.hpp.
  const std::uintptr_t before =
      task->state_word().fetch_or(task_header::detached_bit, std::memory_order_acq_rel);
  if (!explicit_detach && (before & (task_header::done_bit | task_header::abandoned_bit)) == 0 &&
      rt->options.debug) {
    // The task was still running, so its runtime is alive.
    rt->report_composed([name] {
      return std::string("weft debug: the join_handle of a running task") +
             (name != nullptr ? std::string(" '") + name + "'" : std::string()) +
             " was dropped; the task now runs detached (call detach() to mean it)";
    });
    return;  // it was running: nothing below applies
  }
  if (!reported &&
      (before & (task_header::done_bit | task_header::listed_bit)) == task_header::done_bit &&
      !result_taken && task->exception()) {
    // Finished with an exception that this handle never took (asyncio: "Task exception was
    // never retrieved"), just before the handle let go. The frame is still alive here because
    // this call destroys it below. (Done but still listed: the owner may free it now, so a task
    // finishing in that instant on another worker goes unreported rather than read after free.)
    report_unretrieved_if_alive(task);
  }
  if ((before & (task_header::done_bit | task_header::listed_bit)) == task_header::done_bit) {
    task->frame().destroy();
  } else if ((before & task_header::abandoned_bit) != 0) {
    // Only during the shutdown sweep (single-threaded) or after it (the runtime is gone and the
    // task is no longer in any registry).
    registry::unlink(task);
    task->frame().destroy();
  }
  // Otherwise the task is still running, or completed but is still listed in its shard; the
  // completer or the shard's owner destroys it.
}

namespace {
struct blocking_waiter : join_waiter {
  std::atomic<std::uint32_t> finished{0};

  static std::coroutine_handle<> wake(join_waiter* self, task_header*) noexcept {
    auto* waiter = static_cast<blocking_waiter*>(self);
    // Ordering: release pairs with the blocked thread's acquire load. The futex wake uses only
    // the address, so it is harmless if the blocked thread already returned and the word is gone.
    waiter->finished.store(1, std::memory_order_release);
    futex_wake_all(&waiter->finished);
    return std::noop_coroutine();
  }
};
}  // namespace

void block_until_finished(task_header* task) {
  blocking_waiter waiter;
  waiter.notify = &blocking_waiter::wake;
  switch (task->register_waiter(&waiter)) {
    case join_registration::registered:
      break;
    case join_registration::finished:
      return;  // finished (or abandoned) already
    case join_registration::busy:
      throw std::logic_error(
          "weft: block_on/join of a task that another task awaits at once; a task can be awaited "
          "by one waiter at a time");
  }
  // Ordering: acquire pairs with blocking_waiter::wake's release store: the result is visible.
  while (waiter.finished.load(std::memory_order_acquire) == 0)
    futex_wait(&waiter.finished, 0);
}

void request_cancel(task_header* task) noexcept {
  // An abandoned task never runs again and its runtime may be gone: nothing to do (issue 10, bug
  // 4: a cancel() through a handle that outlived its runtime ran a hook into freed memory).
  // Ordering: acquire pairs with the sweep's acq_rel RMW; a cancel racing with the sweep itself
  // is settled on the hook (the sweep exchanges it away, the awaiter's destructor waits for a
  // canceller that took it first).
  if ((task->state_word().load(std::memory_order_acquire) & task_header::abandoned_bit) != 0)
    return;
  std::uint32_t state = task->cancel_word().load(std::memory_order_relaxed);
  // Ordering: seq_cst, the canceller's half of the Dekker pattern in task_header::publish_hook.
  while (!task->cancel_word().compare_exchange_weak(
      state, (state | task_header::cancel_pending) + task_header::cancel_request,
      std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  if (cancel_hook* hook = task->hook_slot().exchange(nullptr, std::memory_order_seq_cst)) {
    hook->on_cancel(hook);
    // Ordering: release, so the awaiter that waits for `finished` (withdraw_hook) sees everything
    // on_cancel did; after this store the hook may be gone.
    hook->finished.store(true, std::memory_order_release);
  }
}

std::uint32_t withdraw_cancel_request(task_header* task) noexcept {
  std::uint32_t state = task->cancel_word().load(std::memory_order_relaxed);
  for (;;) {
    if (state < task_header::cancel_request) return 0;
    std::uint32_t next = state - task_header::cancel_request;
    // The last request taken back also takes back a delivery that is still pending.
    if (next < task_header::cancel_request) next &= ~task_header::cancel_pending;
    // Ordering: acq_rel, as every RMW on cancel_state (task_header::cancel_state): the acquire
    // reads a canceller's message published before its request; relaxed on failure (retry).
    if (task->cancel_word().compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
      // No request stands any more: neither does its message (it would otherwise ride on the
      // next, unrelated cancellation). A cancel("reason") racing with this uncancel may lose its
      // message here if it wrote it before its request was counted (it is still delivered).
      if (next < task_header::cancel_request) release_cancel_message(task->take_cancel_message());
      return next / task_header::cancel_request;
    }
  }
}

void wake(runtime_core* rt, std::coroutine_handle<> waiter) noexcept {
  worker* self = current_worker();
  if (rt->trace != nullptr) [[unlikely]]
    rt->trace->woke(self, waiter.address());
  if (self != nullptr && &self->runtime() == rt) {
    self->push_lifo(waiter.address());  // a deque overflow also goes to the injector
    return;
  }
  // From outside the runtime (a worker of another runtime, a poller, a plain thread): pin `rt`
  // for the injection. The push publishes the task, which may then run and end at once, and its
  // end may be what lets the owner destroy `rt` (an executor task that joined a pool task, the
  // owner waiting for it): without the pin the rest of inject() (the queue's count, the worker to
  // notify) would touch a freed runtime. TSan found it (test_frame_executor, 2026-12-06).
  // Ordering: relaxed increment. It is sequenced before the push, whose publication of the task
  // happens before everything the task's end leads to, shutdown's acquire load of `wakers`
  // included, which so reads this increment or a later value (coherence): never a zero from
  // before it.
  rt->wakers.fetch_add(1, std::memory_order_relaxed);
  try {
    rt->inject(waiter.address());
    // Ordering: release, paired with shutdown's acquire load (runtime.cpp): the accesses inside
    // inject() happen before the runtime is freed. Later RMWs by other wakers continue the release
    // sequence, so a zero read after them synchronizes with this one too.
    rt->wakers.fetch_sub(1, std::memory_order_release);
  } catch (...) {
    // The injection queue could not grow (out of memory). A wake-up cannot be dropped (its task
    // would wait forever, silently) and cannot be reported to a caller (it comes from a release,
    // a timer or a cancellation): report and abort.
    std::fputs("weft: out of memory while waking a task; aborting\n", stderr);
    std::abort();
  }
}

}  // namespace weft::detail
