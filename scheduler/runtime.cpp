// scheduler/runtime.cpp: building and tearing down a runtime, and the entry points that tasks,
// join handles and awaiters call into (declared in the public detail headers).
#include <weft/scheduler/runtime.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/io.hpp>

#include "runtime_core.hpp"

namespace weft {

cancelled_error::~cancelled_error() = default;

namespace detail {

namespace {
// Runtimes alive in this process, so that a join_handle dropped after its runtime was destroyed
// does not report through a dangling pointer. Only the (rare) reporting path looks it up.
std::mutex live_runtimes_mutex;
std::vector<runtime_core*> live_runtimes;

std::size_t resolve_worker_count(std::size_t requested) {
  if (requested != 0) return requested;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : hardware;
}

runtime_options validated(runtime_options options) {
  options.worker_threads = resolve_worker_count(options.worker_threads);
  if (const char* env = std::getenv("WEFT_DEBUG"); env != nullptr && std::string_view(env) == "1") {
    options.debug = true;
  }
  if (options.worker_threads > 0x7fff) {
    throw std::invalid_argument("weft::runtime: at most 32767 worker threads");
  }
  return options;
}

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

runtime_core::runtime_core(runtime_options opts)
    : options(validated(std::move(opts))),
      idle(options.worker_threads),
      registry(options.worker_threads),
      poller(*this) {
  workers.reserve(options.worker_threads);
  for (std::size_t i = 0; i < options.worker_threads; ++i) {
    workers.push_back(std::make_unique<worker>(*this, i));
  }
}

runtime_core::~runtime_core() { shutdown(options.shutdown_timeout); }

void runtime_core::start() {
  {
    std::lock_guard lock(live_runtimes_mutex);
    live_runtimes.push_back(this);
  }
  poller.start(options.thread_name);
  for (auto& w : workers)
    w->start();
  started_ = true;
}

std::size_t runtime_core::shutdown(std::chrono::nanoseconds grace) {
  // Phase 1, graceful (asyncio.run's ending): refuse new work from outside, cancel every task,
  // and let the pool run them to their ends (their cleanup, `async with` exits and RAII included)
  // for up to `grace`.
  //
  // Ordering: seq_cst store. Foreign spawns read `closing` under the foreign shard's lock (below),
  // workers read it after the acquire of their list_request bump, and spawns on a worker read it
  // with acquire (spawn_root); each of those either sees it or happens before the cancel pass that
  // follows and is cancelled by it.
  if (closing_.exchange(true, std::memory_order_seq_cst)) return 0;
  // No grace: nothing would wait for the cancelled tasks, so none is cancelled; every unfinished
  // task is destroyed where it waits (below), as a runtime did before shutdown took a grace.
  if (grace <= std::chrono::nanoseconds::zero()) {
    // Still the barrier against half-done foreign spawns (see below).
    registry.foreign_shard().lock.lock();
    registry.foreign_shard().lock.unlock();
  } else {
    // Every foreign spawn holds this lock from its `closing` check to its injection, so after
    // this section each one either finished (its task is listed here and gets cancelled) or
    // will see `closing` and throw runtime_stopped.
    registry_shard& foreign = registry.foreign_shard();
    foreign.lock.lock();
    registry::cancel_all(foreign);
    foreign.lock.unlock();
    for (std::size_t i = 0; i < workers.size(); ++i) {
      // Ordering: acq_rel RMW, released after `closing`; the worker's acquire load of
      // list_request then sees `closing` (worker.cpp, next_task).
      registry.worker_shard(i).list_request.fetch_add(1, std::memory_order_acq_rel);
      workers[i]->park.unpark();
    }
    // registry.size() counts listed tasks: a finished task leaves the registry when its shard's
    // owner unlinks it, which the awake workers do at once.
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (std::uint32_t round = 0; registry.size() != 0; ++round) {
      if (std::chrono::steady_clock::now() >= deadline) break;
      // Short naps: most tasks end within a few wake-ups of their cancellation.
      if (round < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(round < 256 ? 50 : 1000));
      }
    }
  }

  // Phase 2: stop the threads. A task that is running now still runs to its next suspension (a
  // thread cannot be interrupted); one that never suspends keeps its worker, and this join.
  stopping_.store(true, std::memory_order_seq_cst);
  for (auto& w : workers)
    w->park.unpark();
  for (auto& w : workers)
    w->join();
  poller.stop();
  // No thread of this runtime runs any more. Queued pointers refer to frames owned by tasks in
  // the registry; drop them without resuming, then destroy the tasks.
  for (auto& w : workers)
    w->clear_queues();
  injector.clear();
  const std::size_t left = destroy_pending_tasks(grace);
  poller.clear_for_shutdown();
  {
    std::lock_guard lock(live_runtimes_mutex);
    std::erase(live_runtimes, this);
  }
  // A report pinned this runtime before it left the list: let it finish (it runs the log hook).
  while (reporters.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
  return left;
}

namespace {
// The runtime whose shutdown sweep runs on this thread (destroy_pending_tasks): a frame destructor
// that spawns during the sweep gets a task that is abandoned at once instead of an exception
// thrown out of a destructor (which would terminate the process).
thread_local runtime_core* sweeping = nullptr;
}  // namespace

std::size_t runtime_core::destroy_pending_tasks(std::chrono::nanoseconds grace) {
  sweeping = this;
  // Every listed task is unfinished here (the remote stacks are drained first).
  const std::vector<task_header*> pending = registry.drain_and_snapshot();
  // Take every published cancel hook and run it, while every frame (and so every primitive that
  // lives in one) is alive: a waiter queued in a mutex, semaphore, event, condition variable,
  // barrier, queue or channel is unlinked here, so no list keeps a node of a frame destroyed
  // below (issue 10, bug 1). The wake-ups on_cancel makes go to this runtime's stopped queues and
  // are dropped. A canceller on another thread that took a hook first is waited for by the
  // awaiter's destructor (cancellable_wait). No frame can go meanwhile: `abandoned` is not set
  // yet, so a handle dropped on another thread only detaches its unfinished task.
  for (task_header* t : pending) {
    // Ordering: acq_rel against the awaiter's seq_cst publish and the canceller's exchange.
    if (cancel_hook* hook = t->hook.exchange(nullptr, std::memory_order_acq_rel)) {
      hook->on_cancel(hook);
      // Ordering: release, as in request_cancel: the awaiter's destructor acquires it.
      hook->finished.store(true, std::memory_order_release);
    }
  }
  // Abandon each task: from its RMW on, a task with a handle belongs to that handle (which may be
  // dropped on another thread at once and free the frame), so the sweep touches it no more;
  // a task without one (detached) belongs to the sweep. From then on request_cancel ignores it
  // (a cancel() through a handle that outlives the runtime is inert).
  std::vector<task_header*> unowned;
  std::vector<std::pair<join_waiter*, task_header*>> waiters;
  for (task_header* t : pending) {
    // With a grace, each task left is one that did not end when cancelled: say which. Without
    // one the caller asked for exactly this, and nothing was cancelled.
    if (grace > std::chrono::nanoseconds::zero()) {
      report_composed([t, grace] {
        return std::string("weft: shutdown: task") +
               (t->name != nullptr ? std::string(" '") + t->name + "'" : std::string()) +
               " did not finish within " +
               std::to_string(
                   std::chrono::duration_cast<std::chrono::milliseconds>(grace).count()) +
               " ms of its cancellation; destroying it where it waits";
      });
    }
    registry::unlink(t);  // the registry dies with the runtime
    // Ordering: acq_rel, the protocol's RMW (task_header.hpp): acquire sees a waiter registered
    // by a release CAS and a handle's release; release publishes `abandoned` to take_result,
    // release_root and request_cancel. `listed` is cleared with it: the task is unlinked.
    const std::uintptr_t before = t->state.fetch_xor(
        task_header::abandoned_bit | task_header::listed_bit, std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0) {
      unowned.push_back(t);
    } else if (auto* w = reinterpret_cast<join_waiter*>(before & ~task_header::flag_mask)) {
      // A registered waiter keeps the handle (it awaits through it) until it is notified.
      waiters.emplace_back(w, t);
    }
  }
  // Waiters registered on an abandoned task learn of it now, before any frame goes (a waiter
  // may live in another task's frame): a task awaiting from another runtime is woken there and
  // gets runtime_stopped, a thread in block_on returns; a waiter of this runtime is about to be
  // destroyed, so its wake-up into the stopped queues is dropped.
  for (auto [waiter, task] : waiters) {
    runtime_core* home = waiter->home;
    const std::coroutine_handle<> next = waiter->notify(waiter, task);
    if (next != std::noop_coroutine() && home != nullptr && home != this) wake(home, next);
  }
  // Destroy the tasks nobody holds a handle to. Their frames may hold handles to other pending
  // tasks; dropping those destroys them in turn (release_root, abandoned), so nothing is
  // destroyed twice. The tasks still held by handles are left to them: done() is true, awaiting
  // throws runtime_stopped, dropping frees the frame.
  for (task_header* t : unowned)
    t->frame.destroy();
  sweeping = nullptr;
  return pending.size();
}

void runtime_core::cancel_shard_for_shutdown(registry_shard& shard) noexcept {
  registry::cancel_all(shard);
}

void runtime_core::notify_one_if_needed() {
  if (const auto index = idle.worker_to_notify()) workers[*index]->park.unpark();
}

void runtime_core::wake_for_local_work() {
  if (const auto index = idle.wake_one()) workers[*index]->park.unpark();
}

void runtime_core::inject(void* task) {
  injector.push(task);
  injected.fetch_add(1, std::memory_order_relaxed);
  notify_one_if_needed();
}

void runtime_core::inject_batch(void* const* tasks, std::size_t count) {
  injector.push_bulk(tasks, count);
  injected.fetch_add(count, std::memory_order_relaxed);
  notify_one_if_needed();
}

void runtime_core::report(std::string_view message) const noexcept {
  if (options.log) {
    try {
      options.log(message);
      return;
    } catch (...) {
      // Reports come from paths that cannot throw (a task's completion, a handle's release, the
      // shutdown sweep): a hook that throws loses nothing, the report goes to stderr instead.
      std::fputs("weft: the log hook threw; its report follows on stderr\n", stderr);
    }
  }
  std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
}

runtime_stats runtime_core::stats() const noexcept {
  runtime_stats s;
  s.spawned = foreign_spawned.load(std::memory_order_relaxed);
  s.completed = foreign_completed.load(std::memory_order_relaxed);
  for (const auto& w : workers) {
    s.spawned += w->counters.spawned.load(std::memory_order_relaxed);
    s.completed += w->counters.completed.load(std::memory_order_relaxed);
    s.stolen += w->counters.stolen.load(std::memory_order_relaxed);
    s.parked += w->counters.parked.load(std::memory_order_relaxed);
  }
  s.injected = injected.load(std::memory_order_relaxed);
  s.live_tasks = registry.size();
  s.timers = const_cast<detail::poller&>(poller).timer_count();
  return s;
}

// ---- entry points declared in task_header.hpp ----

void spawn_root(runtime_core* rt, task_header* task) {
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
  task->runtime = rt;
  if (self != nullptr && &self->runtime() == rt) {
    // A worker of this runtime. During shutdown's graceful phase the new task starts cancelled:
    // it runs to its first cancellation point and ends there (a task cleaning up after its own
    // cancellation may spawn; an exception here could escape a destructor). Ordering: the
    // acquire in closing() pairs with shutdown's seq_cst store; the relaxed writes below are
    // published with the task by push_local's release.
    if (rt->closing()) [[unlikely]] {
      task->cancel_state.store(task_header::cancel_pending | task_header::cancel_request,
                               std::memory_order_relaxed);
    }
    task->state.store(task_header::listed_bit, std::memory_order_relaxed);
    registry::insert(rt->registry.worker_shard(self->index()), task);
    worker_counters::bump(self->counters.spawned);
    self->push_local(task->frame.address());
    return;
  }
  if (sweeping == rt) {
    // The sweep destroys frames on this thread, and one of them spawns from its destructor: the
    // task is abandoned at once (never runs; its handle reports runtime_stopped and frees it).
    task->state.store(task_header::abandoned_bit, std::memory_order_relaxed);
    task->shard = nullptr;
    return;
  }
  // Another thread (or another runtime's worker). The foreign shard's lock is held from the
  // `closing` check to the injection, so shutdown's pass over that shard (which takes the same
  // lock after setting `closing`) either sees the task listed and cancels it, or this spawn sees
  // `closing` and refuses; and the runtime cannot be freed while a spawn is half done.
  registry_shard& shard = rt->registry.foreign_shard();
  shard.lock.lock();
  if (rt->closing()) {
    shard.lock.unlock();
    throw runtime_stopped("weft: spawn on a runtime that is shutting down");
  }
  // Not yet visible to any other thread: the injection below publishes it (release).
  task->state.store(task_header::listed_bit, std::memory_order_relaxed);
  registry::insert_locked(shard, task);
  try {
    rt->inject(task->frame.address());
  } catch (...) {
    // Out of memory in the injection queue: the caller keeps the frame, unlisted.
    registry::unlink_locked(task);
    task->state.store(0, std::memory_order_relaxed);
    shard.lock.unlock();
    throw;
  }
  rt->foreign_spawned.fetch_add(1, std::memory_order_relaxed);
  shard.lock.unlock();
}

namespace {
void report_unretrieved(runtime_core* rt, task_header* task) noexcept {
  // A task that ended cancelled did what it was asked; asyncio does not log those either.
  if (task->ended_cancelled) return;
  rt->report_composed([task] {
    return std::string("weft: a detached task") +
           (task->name != nullptr ? std::string(" '") + task->name + "'" : std::string()) +
           " ended with an exception nobody retrieved: " + describe(task->exception);
  });
}

void report_unretrieved_if_alive(task_header* task) noexcept {
  runtime_core* rt = task->runtime;
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
  runtime_core* rt = task->runtime;
  worker* self = current_worker();
  const bool on_own_runtime = self != nullptr && &self->runtime() == rt;
  if (on_own_runtime) {
    worker_counters::bump(self->counters.completed);
  } else {
    rt->foreign_completed.fetch_add(1, std::memory_order_relaxed);
  }
  if (task->exception) {
    try {
      std::rethrow_exception(task->exception);
    } catch (const cancelled_error&) {
      task->ended_cancelled = true;  // published with `done` below
      task->ended_by_shutdown = rt->closing();
    } catch (...) {
    }
  }
  if (rt->options.debug && task->cancel_delivered && !task->exception &&
      task->cancel_state.load(std::memory_order_relaxed) >= task_header::cancel_request) {
    rt->report_composed([task] {
      return std::string("weft debug: task") +
             (task->name != nullptr ? std::string(" '") + task->name + "'" : std::string()) +
             " finished normally after a cancellation was delivered to it: it swallowed the "
             "cancellation (rethrow cancelled_error after cleaning up)";
    });
  }
  registry_shard* shard = task->shard;
  const bool can_unlink =
      shard->shared || (on_own_runtime && shard == &rt->registry.worker_shard(self->index()));
  std::uintptr_t before = 0;
  if (can_unlink) {
    registry::unlink(task);
    // Ordering: acq_rel (task_header.hpp). Sets done and clears listed in one step: release
    // publishes the result and `exception`, acquire makes a waiter registered by a release CAS
    // visible here.
    before = task->state.fetch_xor(task_header::done_bit | task_header::listed_bit,
                                   std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0) {
      if (task->exception) report_unretrieved(rt, task);
      task->frame.destroy();
      return std::noop_coroutine();
    }
  } else {
    // Completed away from its shard's owner (stolen): `listed` stays set, so nobody destroys the
    // frame until the owner has unlinked it; that keeps `task` valid through the end of this call.
    before = task->state.fetch_or(task_header::done_bit, std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0 && task->exception) report_unretrieved(rt, task);
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
  group_link* group = task->group;  // read first: without a group the frame may die below
  runtime_core* rt = task->runtime;
  std::coroutine_handle<> next = finish_root(task);
  if (group == nullptr) return next;
  const std::coroutine_handle<> joiner = group->child_done(group, task);
  if (joiner == std::noop_coroutine()) return next;
  if (next == std::noop_coroutine()) return joiner;
  wake(rt, joiner);
  return next;
}

void release_root(task_header* task, bool result_taken, bool explicit_detach) noexcept {
  // Read before the RMW: once `detached` is set, a running task may finish and free its frame.
  runtime_core* rt = task->runtime;
  const char* name = task->name;
  // An exception never retrieved is reported while this handle still keeps the frame alive: once
  // `detached` is set, a task that completed on another worker (done, still listed) may be
  // destroyed at any moment by its shard's owner (registry::drain_remote).
  bool reported = false;
  if (!result_taken && (task->state.load(std::memory_order_acquire) & task_header::done_bit) != 0 &&
      task->exception) {
    report_unretrieved_if_alive(task);
    reported = true;
  }
  // Ordering: acq_rel, see task_header.hpp.
  const std::uintptr_t before =
      task->state.fetch_or(task_header::detached_bit, std::memory_order_acq_rel);
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
      !result_taken && task->exception) {
    // Finished with an exception that this handle never took (asyncio: "Task exception was
    // never retrieved"), just before the handle let go. The frame is still alive here because
    // this call destroys it below. (Done but still listed: the owner may free it now, so a task
    // finishing in that instant on another worker goes unreported rather than read after free.)
    report_unretrieved_if_alive(task);
  }
  if ((before & (task_header::done_bit | task_header::listed_bit)) == task_header::done_bit) {
    task->frame.destroy();
  } else if ((before & task_header::abandoned_bit) != 0) {
    // Only during the shutdown sweep (single-threaded) or after it (the runtime is gone and the
    // task is no longer in any registry).
    registry::unlink(task);
    task->frame.destroy();
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
  while (waiter.finished.load(std::memory_order_acquire) == 0)
    futex_wait(&waiter.finished, 0);
}

void require_not_on_worker(const char* what) {
  if (current_worker() != nullptr) {
    throw std::logic_error(std::string(what) +
                           " called on a worker thread: it would block a thread the runtime "
                           "needs (and could deadlock); co_await the task instead");
  }
}

void require_worker(const char* what) {
  if (current_worker() == nullptr) {
    throw std::logic_error(std::string(what) + " called outside a weft runtime");
  }
}

runtime_core* current_runtime_core() noexcept {
  worker* self = current_worker();
  return self != nullptr ? &self->runtime() : nullptr;
}

bool budget_exhausted() noexcept {
  worker* self = current_worker();
  return self != nullptr && self->spend_budget();
}

void schedule_yield(std::coroutine_handle<> waiter) noexcept {
  current_worker()->push_yielded(waiter.address());
}

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

void arm_lazy_timeout(task_header* task) noexcept {
  lazy_timeout* timeout = task->timeout_to_arm;
  task->timeout_to_arm = nullptr;
  timeout->armed = true;
  timeout->entry.on_fire = &fire_lazy_timeout;
  // The task runs on a worker of its own runtime. Arming takes the wheel's lock; once the entry is
  // linked, the poller may fire it at any moment: that only touches `fired` and the task's header,
  // and the awaiter is not destroyed before its disarm_timer waited for the callback.
  timeout->entry.owner = task->runtime;
  if (task->runtime->poller.arm(&timeout->entry, timeout->deadline) != arm_result::armed) {
    fire_lazy_timeout(&timeout->entry);  // due already (cancel_timer is never used on these)
  }
}

void request_cancel(task_header* task) noexcept {
  // An abandoned task never runs again and its runtime may be gone: nothing to do (issue 10, bug
  // 4: a cancel() through a handle that outlived its runtime ran a hook into freed memory).
  // Ordering: acquire pairs with the sweep's acq_rel RMW; a cancel racing with the sweep itself
  // is settled on the hook (the sweep exchanges it away, the awaiter's destructor waits for a
  // canceller that took it first).
  if ((task->state.load(std::memory_order_acquire) & task_header::abandoned_bit) != 0) return;
  std::uint32_t state = task->cancel_state.load(std::memory_order_relaxed);
  // Ordering: seq_cst, the canceller's half of the Dekker pattern in task_header::publish_hook.
  while (!task->cancel_state.compare_exchange_weak(
      state, (state | task_header::cancel_pending) + task_header::cancel_request,
      std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  if (cancel_hook* hook = task->hook.exchange(nullptr, std::memory_order_seq_cst)) {
    hook->on_cancel(hook);
    // Ordering: release, so the awaiter that waits for `finished` (withdraw_hook) sees everything
    // on_cancel did; after this store the hook may be gone.
    hook->finished.store(true, std::memory_order_release);
  }
}

std::uint32_t withdraw_cancel_request(task_header* task) noexcept {
  std::uint32_t state = task->cancel_state.load(std::memory_order_relaxed);
  for (;;) {
    if (state < task_header::cancel_request) return 0;
    std::uint32_t next = state - task_header::cancel_request;
    // The last request taken back also takes back a delivery that is still pending.
    if (next < task_header::cancel_request) next &= ~task_header::cancel_pending;
    if (task->cancel_state.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
      return next / task_header::cancel_request;
    }
  }
}

void wake(runtime_core* rt, std::coroutine_handle<> waiter) noexcept {
  worker* self = current_worker();
  if (self != nullptr && &self->runtime() == rt) {
    self->push_lifo(waiter.address());  // a deque overflow also goes to the injector
    return;
  }
  try {
    rt->inject(waiter.address());
  } catch (...) {
    // The injection queue could not grow (out of memory). A wake-up cannot be dropped (its task
    // would wait forever, silently) and cannot be reported to a caller (it comes from a release,
    // a timer or a cancellation): report and abort.
    std::fputs("weft: out of memory while waking a task; aborting\n", stderr);
    std::abort();
  }
}

}  // namespace detail

// ---- weft::runtime ----

runtime::runtime() : runtime(runtime_options{}) {}

runtime::runtime(runtime_options options) : core_(new detail::runtime_core(std::move(options))) {
  try {
    core_->start();
  } catch (...) {
    delete core_;
    throw;
  }
}

runtime::~runtime() {
  if (detail::current_runtime_core() == core_) {
    core_->report("weft: a runtime was destroyed from one of its own worker threads; aborting");
    std::abort();
  }
  delete core_;  // shuts down with options.shutdown_timeout, unless shutdown() ran
}

std::size_t runtime::shutdown(std::chrono::milliseconds grace) {
  if (detail::current_runtime_core() == core_) {
    throw std::logic_error(
        "weft::runtime::shutdown called on one of the runtime's own worker threads: it waits for "
        "those threads to stop");
  }
  return core_->shutdown(grace);
}

std::size_t runtime::worker_count() const noexcept { return core_->workers.size(); }

runtime_stats runtime::stats() const noexcept { return core_->stats(); }

std::vector<task_info> runtime::tasks() const {
  using namespace std::chrono_literals;
  detail::runtime_core& rt = *core_;
  std::lock_guard lock(rt.listing_mutex);
  detail::worker* self = detail::current_worker();
  std::vector<task_info> all;
  // Ask every other worker (parked ones are woken to answer), then collect.
  std::vector<std::uint64_t> requests(rt.workers.size(), 0);
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    if (self != nullptr && self == rt.workers[i].get()) continue;
    detail::registry_shard& shard = rt.registry.worker_shard(i);
    requests[i] = shard.list_request.fetch_add(1, std::memory_order_acq_rel) + 1;
    rt.workers[i]->park.unpark();
  }
  const auto give_up = std::chrono::steady_clock::now() + 200ms;
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    detail::registry_shard& shard = rt.registry.worker_shard(i);
    if (requests[i] == 0) {
      auto own = detail::registry::describe(shard);  // the calling worker's own shard
      all.insert(all.end(), own.begin(), own.end());
      continue;
    }
    while (shard.list_done.load(std::memory_order_acquire) < requests[i] &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    if (shard.list_done.load(std::memory_order_acquire) >= requests[i]) {
      all.insert(all.end(), shard.listing.begin(), shard.listing.end());
    }
  }
  detail::registry_shard& foreign = rt.registry.foreign_shard();
  foreign.lock.lock();
  auto theirs = detail::registry::describe(foreign);
  foreign.lock.unlock();
  all.insert(all.end(), theirs.begin(), theirs.end());
  return all;
}

// ---- weft::io_source ----

namespace {
detail::runtime_core& calling_runtime(const char* what) {
  detail::runtime_core* rt = detail::current_runtime_core();
  if (rt == nullptr) throw std::logic_error(std::string(what) + " outside a weft runtime");
  return *rt;
}
}  // namespace

io_source::io_source(int fd)
    : fd_(fd), reg_(calling_runtime("weft::io_source(fd) constructed").poller.register_fd(fd)) {}

io_source::io_source(runtime& rt, int fd) : fd_(fd), reg_(rt.core_->poller.register_fd(fd)) {}

io_source::~io_source() {
  if (reg_->orphaned) {
    delete reg_;  // the runtime is gone
  } else {
    reg_->owner->deregister(reg_);
  }
}

}  // namespace weft
