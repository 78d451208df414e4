// scheduler/pool.hpp: what the workers of one runtime share, and the little they ask of the
// runtime.
//
// A worker (worker.cpp) runs its loop against this object alone: the options, the injection
// queue, the idle protocol, the poller it may drive while parked, its siblings (to steal from and
// to wake), the trace recorder and the deterministic mode's scheduler, and the two phases of
// shutdown. It never sees the runtime's hub (runtime_core.hpp: the registry's owner, the offload
// pools, the extensions, construction and shutdown), which stands above it:
//
//     runtime_core  ->  worker  ->  pool  ->  injector, idle, poller, parker
//          \______________________________/
//
// runtime_core derives from pool (one object, so `rt.injector` reads as before) and provides the
// two calls that need the runtime as a whole: report (the log hook, with the deterministic seed)
// and cancel_shard_for_shutdown (the registry's tasks of a worker). It owns the workers; the pool
// lists them by pointer, and wakes one through its parker (so this file needs no worker layout).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <weft/scheduler/runtime.hpp>

#include "idle.hpp"
#include "injector.hpp"
#include "parker.hpp"
#include "poller.hpp"

namespace weft::detail {

struct registry_shard;
class simulation;
class tracer;
class worker;

class pool {
 public:
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Makes `task` runnable from a thread that is not one of this runtime's workers.
  void inject(void* task);
  // Makes a batch runnable (yielders at a maintenance tick; the poller's timers and readiness).
  void inject_batch(void* const* tasks, std::size_t count);
  // Wakes one parked worker if the idle protocol says one should be woken.
  void notify_one_if_needed();
  // The same for work a worker pushed onto its own deque (see idle.hpp for why it may be cheaper).
  void notify_for_local_work() {
    if (idle.maybe_should_wake_for_local_work()) [[unlikely]] {
      wake_for_local_work();
    }
  }
  [[gnu::noinline]] void wake_for_local_work();

  // Workers leave their loop (the last phase of shutdown). Ordering: acquire pairs with
  // shutdown's release store, made after everything the workers must see before they leave.
  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  // shutdown began: spawns from outside the pool are refused, spawns from its own workers start
  // cancelled. Ordering: acquire pairs with shutdown's seq_cst store (see spawn_root).
  [[nodiscard]] bool closing() const noexcept { return closing_.load(std::memory_order_acquire); }

  // Asked of the runtime above (runtime_core implements both). Reports through options.log (or
  // stderr); never throws.
  virtual void report(std::string_view message) const noexcept = 0;
  // On a worker of this runtime, between two tasks, once per shutdown request: cancels the tasks
  // of the worker's registry shard (worker.cpp calls it where it serves shutdown's request).
  virtual void cancel_shard_for_shutdown(registry_shard& shard) noexcept = 0;

  const runtime_options options;
  // Deterministic mode (simulation.hpp), or null. Set before any thread starts, never changed:
  // the branches on it in the task lifecycle are as predictable as a constant.
  const std::unique_ptr<simulation> sim;
  // The trace file's recorder (trace.hpp), or null; as `sim`, set before any thread starts and
  // never changed. Shared with the blocking pool, whose threads may outlive the runtime.
  const std::shared_ptr<tracer> trace;
  detail::injector injector;
  detail::idle idle;
  detail::poller poller;
  // The workers, by index, and each one's parker (what a wake-up needs). Filled by runtime_core
  // before any thread starts, never changed afterwards.
  std::vector<worker*> workers;
  std::vector<parker*> parkers;
  // Tasks made runnable from outside the pool (a statistic; relaxed). On a cache line of its
  // own: a foreign spawner bumps it for every task, and on the line of `workers` and `parkers`,
  // which every worker reads while it searches and notifies, that RMW cost bench spawn_remote a
  // third of pool::inject's time (perf).
  alignas(64) std::atomic<std::uint64_t> injected{0};
  // compute() calls started and not yet ended (compute_arena.cpp, through offload_host). While
  // there are any, the oneTBB threads keep the cores busy with the kernel's default slice, and a
  // searching worker parks rather than yield its core to one of them (worker::search).
  // Ordering: relaxed; a hint read by the search, which decides nothing else by it: a stale 0
  // means one more yielding search, a stale count one search that parks sooner.
  alignas(64) std::atomic<std::size_t> compute_calls{0};

 protected:
  // `host`: the poller's view of the runtime (inject a batch, is the pool idle, report), which the
  // runtime implements; a base of runtime_core constructed before this one. `hosted`: a
  // frame_executor's core, whose one worker is driven by the host thread (never a driver).
  pool(runtime_options validated, std::unique_ptr<simulation> deterministic,
       std::shared_ptr<tracer> recorder, poller_host& host, bool hosted);
  ~pool();

  std::atomic<bool> closing_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace weft::detail
