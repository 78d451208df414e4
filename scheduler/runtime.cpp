// scheduler/runtime.cpp: building and tearing down a runtime (start, shutdown and its sweep), the
// injection entry points, reports, and weft::runtime's public members. The life of a task is in
// task_lifecycle.cpp, the timer entry points in timers.cpp, io_source in io_source.cpp, and the
// calling thread's queries in worker.cpp.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/runtime.hpp>

#include <algorithm>
#include <cerrno>
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

#include "dump.hpp"
#include "runtime_core.hpp"

namespace weft {

namespace detail {

std::mutex live_runtimes_mutex;
std::vector<runtime_core*> live_runtimes;
thread_local runtime_core* sweeping = nullptr;

namespace {

std::size_t resolve_worker_count(std::size_t requested) {
  if (requested != 0) return requested;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : hardware;
}

// WEFT_SEED, if set: the seed to replay (runtime_options::deterministic_seed).
std::optional<std::uint64_t> seed_from_environment() {
  const char* env = std::getenv("WEFT_SEED");
  if (env == nullptr || *env == '\0') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(env, &end, 0);
  if (*end != '\0' || errno != 0 || *env == '-') {
    throw std::invalid_argument(std::string("weft::runtime: WEFT_SEED='") + env +
                                "' is not a seed (a decimal or 0x-hexadecimal 64-bit number)");
  }
  return value;
}

runtime_options validated(runtime_options options, bool hosted = false) {
  if (hosted) {
    options.deterministic_seed.reset();  // the host thread is a frame_executor's scheduler
  } else if (options.deterministic_seed) {
    // Deterministic mode: one worker and the virtual clock (simulation.hpp); WEFT_SEED replays.
    if (const auto replay = seed_from_environment()) options.deterministic_seed = replay;
    options.worker_threads = 1;
    options.virtual_time = true;
  }
  options.worker_threads = resolve_worker_count(options.worker_threads);
  if (const char* env = std::getenv("WEFT_DEBUG"); env != nullptr && std::string_view(env) == "1") {
    options.debug = true;
  }
  if (options.worker_threads > 0x7fff) {
    throw std::invalid_argument("weft::runtime: at most 32767 worker threads");
  }
  return options;
}

}  // namespace

runtime_core::runtime_core(runtime_options opts)
    : runtime_core(validated(std::move(opts)), /*hosted=*/false, 0) {}

runtime_core::runtime_core(runtime_options opts, hosted_t)
    : runtime_core(validated(
                       [&] {
                         opts.worker_threads = 1;
                         // Its clock would wait for a pool that never parks.
                         opts.virtual_time = false;
                         return std::move(opts);
                       }(),
                       /*hosted=*/true),
                   /*hosted=*/true, 0) {}

// A frame executor's tasks offload too (a game loop loads assets with to_thread): the blocking
// pool and the arena are lazy either way, no thread and no oneTBB arena until the first call.
// Every argument of pool reads `opts` (the pool copies it), so their order does not matter.
runtime_core::runtime_core(runtime_options opts, bool hosted_core, int)
    : pool(opts,
           opts.deterministic_seed && !hosted_core
               ? std::make_unique<simulation>(*opts.deterministic_seed)
               : nullptr,
           tracer::make(this, opts, hosted_core), *this, hosted_core),
      registry(options.worker_threads),
      blocking(std::make_shared<blocking_pool>(*this, options, trace)),
      compute(make_compute_arena(*this, options.compute_threads, options.thread_name)),
      hosted(hosted_core) {
  owned_workers_.reserve(options.worker_threads);
  for (std::size_t i = 0; i < options.worker_threads; ++i) {
    owned_workers_.push_back(std::make_unique<worker>(*this, *this, i, registry.worker_shard(i)));
    workers.push_back(owned_workers_.back().get());
    parkers.push_back(&owned_workers_.back()->park);
  }
}

runtime_core::~runtime_core() { shutdown(options.shutdown_timeout); }

void runtime_core::start() {
  {
    std::lock_guard lock(live_runtimes_mutex);
    live_runtimes.push_back(this);
  }
  poller.start(options.thread_name);
  if (!hosted) {
    for (auto& w : workers)
      w->start();
  }
  started_ = true;
}

std::size_t runtime_core::shutdown(std::chrono::nanoseconds grace) {
  // Phase 1, graceful (asyncio.run's ending): refuse new work from outside, cancel every task,
  // and let the pool run them to their ends (their cleanup, `async with` exits and RAII included)
  // for up to `grace`.
  //
  // Ordering: seq_cst store. Foreign spawns read `closing` under the foreign shard's lock (below),
  // workers read it after the acquire of their shard's `request` bump, and spawns on a worker read
  // it with acquire (spawn_root); each of those either sees it or happens before the cancel pass
  // that follows and is cancelled by it.
  if (closing_.exchange(true, std::memory_order_seq_cst)) return 0;
  // Tasks of other runtimes on this one (weft::resume_on): none arrives from now on, and those
  // present are cancelled with the rest (visitors.hpp).
  visitors.close_and_cancel();
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
      // `request` then sees `closing` (worker.cpp, serve_requests).
      registry.worker_shard(i).request.fetch_add(1, std::memory_order_acq_rel);
      workers[i]->park.unpark();
    }
    // live_tasks() counts listed and queued unlisted tasks: a finished task leaves the registry
    // when its shard's owner unlinks it, which the awake workers do at once, and a queued
    // unlisted task is adopted (cancelled, since `closing` is set) by the worker that takes it.
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (std::uint32_t round = 0; live_tasks() != 0 || visitors.outstanding() != 0; ++round) {
      if (std::chrono::steady_clock::now() >= deadline) break;
      if (hosted) {
        // A frame_executor: its worker has no thread; this one runs it (frame_executor.cpp).
        drive_hosted_for_shutdown(*this);
        if (round < 64) continue;
      }
      // Short naps: most tasks end within a few wake-ups of their cancellation.
      if (round < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(round < 256 ? 50 : 1000));
      }
    }
  }

  // Visitors (tasks of other runtimes here, or ours elsewhere) cannot be destroyed by this sweep
  // and must not outlive this runtime (visitors.hpp): one left after the grace is fatal. Sealing
  // also stops any task of ours from leaving from now on.
  if (const std::size_t stuck = visitors.seal(); stuck != 0) {
    report_composed([stuck] {
      return "weft: shutdown: " + std::to_string(stuck) +
             " task(s) moved between this runtime and another one with weft::resume_on did not "
             "leave within the grace; their frames cannot be destroyed safely, aborting (destroy a "
             "frame_executor before the runtimes whose tasks visit it)";
    });
    std::abort();
  }
  // Phase 2: stop the threads. A task that is running now still runs to its next suspension (a
  // thread cannot be interrupted); one that never suspends keeps its worker, and this join.
  // Ordering: release pairs with the workers' acquire in stopping(). A parked worker is woken by
  // the unpark below, which synchronizes with its park (parker.cpp), so it sees the flag; a
  // running one sees it at its next check. No fence argument runs through this flag.
  // From here on no task takes a to_thread result: the blocking pool starts no queued call (one
  // would otherwise start whenever a running call ended before the sweep below dropped it).
  blocking->stop_starting();
  stopping_.store(true, std::memory_order_release);
  for (auto& w : workers)
    w->park.unpark();
  for (auto& w : workers)
    w->join();
  poller.stop();
  // compute() calls may use their tasks' frames until fn returns: cancel them and wait for each
  // before any frame is destroyed. Their wake-ups land in the stopped queues (dropped below).
  shutdown_compute_arena(*compute, options.blocking_shutdown_timeout);
  // No thread of this runtime runs any more. Queued pointers refer to frames owned by tasks in
  // the registry, or are tasks no worker listed yet (never started): those are listed in the
  // foreign shard now, so that the sweep below abandons them with the others. Drop the rest
  // without resuming, then destroy the tasks.
  std::vector<task_header*> queued_unlisted;
  for (auto& w : workers)
    w->clear_queues(queued_unlisted);
  injector.clear([&queued_unlisted](void* item) {
    if (task_header* task = unlisted_task_in(item)) queued_unlisted.push_back(task);
  });
  for (task_header* task : queued_unlisted)
    registry::insert(registry.foreign_shard(), task);
  unlisted_swept.fetch_add(queued_unlisted.size(), std::memory_order_relaxed);
  const std::size_t left = destroy_pending_tasks(grace);
  // Every to_thread awaiter is now detached from its call (the sweep ran each hook): calls never
  // started are dropped, running ones get blocking_shutdown_timeout to end, then are reported and
  // left to their threads, which touch the runtime no more.
  blocking->shutdown(options.blocking_shutdown_timeout);
  // The layers' per-runtime state (the net layer's io_uring ring): no awaiter refers to it any
  // more, and its io_sources deregister from the stopped poller as usual.
  destroy_extensions();
  poller.clear_for_shutdown();
  if (trace != nullptr)
    trace->finish([this](std::string_view m) {
      report(m);
    });  // every thread of the runtime is joined (trace.hpp)
  {
    std::lock_guard lock(live_runtimes_mutex);
    std::erase(live_runtimes, this);
  }
  // A report pinned this runtime before it left the list: let it finish (it runs the log hook).
  // Ordering: acquire pairs with the reporter's release decrement (task_lifecycle.cpp): its log
  // hook and its reads of this runtime happen before the runtime is freed.
  while (reporters.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
  // A wake-up from another thread whose task has ended may still be finishing its injection
  // (detail::wake): let it leave the runtime. No new one can start: every task is gone, and a
  // wake-up needs a waiting task of this runtime.
  // Ordering: acquire pairs with the waker's release decrement (task_lifecycle.cpp).
  while (wakers.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
  return left;
}

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
    if (cancel_hook* hook = t->hook_slot().exchange(nullptr, std::memory_order_acq_rel)) {
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
  for (std::size_t index = 0; index < pending.size(); ++index) {
    task_header* t = pending[index];
    // With a grace, each task left is one that did not end when cancelled: say which. Without
    // one the caller asked for exactly this, and nothing was cancelled.
    // At most max_named_stragglers lines name a task; one more line counts the rest (a runtime
    // with thousands of stubborn tasks must not print thousands of lines).
    if (grace > std::chrono::nanoseconds::zero() && index < max_named_stragglers) {
      report_composed([t, grace] {
        return std::string("weft: shutdown: task") +
               (t->name() != nullptr ? std::string(" '") + t->name() + "'" : std::string()) +
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
    const std::uintptr_t before = t->state_word().fetch_xor(
        task_header::abandoned_bit | task_header::listed_bit, std::memory_order_acq_rel);
    if ((before & task_header::detached_bit) != 0) {
      unowned.push_back(t);
    } else if (auto* w = reinterpret_cast<join_waiter*>(before & ~task_header::flag_mask)) {
      // A registered waiter keeps the handle (it awaits through it) until it is notified.
      waiters.emplace_back(w, t);
    }
  }
  if (grace > std::chrono::nanoseconds::zero() && pending.size() > max_named_stragglers) {
    report_composed([&] {
      return "weft: shutdown: and " + std::to_string(pending.size() - max_named_stragglers) +
             " more tasks that did not finish within the grace";
    });
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
    t->frame().destroy();
  sweeping = nullptr;
  return pending.size();
}

void runtime_core::cancel_shard_for_shutdown(registry_shard& shard) noexcept {
  registry::cancel_all(shard);
}

void runtime_core::wake_from_offload(std::coroutine_handle<> waiter) noexcept {
  wake(this, waiter);
}

void runtime_core::report(std::string_view message) const noexcept {
  if (sim != nullptr) [[unlikely]] {
    // Deterministic mode: every report names the seed, so a failure can be replayed.
    try {
      const std::string seed = std::to_string(sim->seed());
      const std::string named = "weft [deterministic seed " + seed +
                                "; replay with WEFT_SEED=" + seed + "]: " + std::string(message);
      report_plain(named);
      return;
    } catch (...) {
      // Out of memory composing the prefix: report the message without it.
    }
  }
  report_plain(message);
}

void runtime_core::report_plain(std::string_view message) const noexcept {
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

void report_to_log(runtime_core* rt, std::string_view message) noexcept {
  if (rt != nullptr) {
    rt->report(message);
  } else {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  }
}

std::uint64_t runtime_core::unlisted_queued() const noexcept {
  // Adoptions first, then spawns: each adoption happens after its spawn's count (spawn_root counts
  // before the push or the injection, whose release the adopting worker acquired), so a count of
  // adoptions seen here implies at least as many spawns seen below. The difference is a
  // snapshot, exact once nothing is in flight.
  std::uint64_t adopted = unlisted_swept.load(std::memory_order_relaxed);
  for (const auto& w : workers) {
    // Ordering: acquire pairs with worker::adopt's release store (the argument above).
    adopted += w->counters.adopted.load(std::memory_order_acquire);
  }
  std::uint64_t spawned = foreign_spawned.load(std::memory_order_relaxed);
  for (const auto& w : workers)  // relaxed: ordered by the acquire loads above
    spawned += w->counters.spawned_unlisted.load(std::memory_order_relaxed);
  return spawned > adopted ? spawned - adopted : 0;
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
  s.live_tasks = live_tasks();
  s.timers = const_cast<detail::poller&>(poller).timer_count();
  blocking->add_stats(s);
  s.compute_running = compute_running(*compute);
  return s;
}

}  // namespace detail

// ---- weft::runtime ----

runtime::runtime() : runtime(runtime_options{}) {}

runtime::runtime(runtime_options options) : core_(new detail::runtime_core(std::move(options))) {
  try {
    if (core_->options.dump_on_signal) detail::enable_dump_signal();
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

std::optional<std::uint64_t> runtime::seed() const noexcept {
  if (core_->sim == nullptr) return std::nullopt;
  return core_->sim->seed();
}

std::vector<task_event> runtime::event_log() const {
  if (core_->sim == nullptr) return {};
  return core_->sim->events();
}

std::vector<task_info> runtime::tasks() const {
  // Each shard in a visitor's section (registry.hpp): no worker has to answer, so a busy one
  // hides nothing (it used to be skipped after 200 ms).
  std::vector<task_info> all;
  detail::registry& reg = core_->registry;
  for (std::size_t i = 0; i < reg.shard_count(); ++i) {
    detail::registry_shard& shard =
        i + 1 < reg.shard_count() ? reg.worker_shard(i) : reg.foreign_shard();
    std::vector<task_info> part;
    {
      const detail::registry::visit visiting(shard);  // see registry.hpp
      part = detail::registry::describe(shard);
    }
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

}  // namespace weft
