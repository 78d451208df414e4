// scheduler/runtime_core.hpp: the private state of a runtime, shared by its parts.
//
// A runtime_core is the workers' shared pool (pool.hpp: the injection queue, the idle coordinator,
// the poller, the options) plus what only the runtime as a whole needs: it owns the workers, the
// registry of live tasks, the offload pools and the extensions. runtime.cpp builds it, starts the
// threads, and tears it down in this order: stop accepting work, stop and join the workers and the
// poller, wait for running compute() calls, drop the queued task pointers, destroy every pending
// task (shutdown sweep), close the blocking pool (waiting for its running calls), disconnect
// timers, free what is left.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <weft/scheduler/detail/runtime_extension.hpp>
#include <weft/scheduler/runtime.hpp>

#include "blocking_pool.hpp"
#include "compute_arena.hpp"
#include "idle.hpp"
#include "injector.hpp"
#include "offload_host.hpp"
#include "poller.hpp"
#include "pool.hpp"
#include "registry.hpp"
#include "simulation.hpp"
#include "trace.hpp"
#include "visitors.hpp"
#include "worker.hpp"

namespace weft::detail {

// Runtimes alive in this process, so that a join_handle dropped after its runtime was destroyed
// does not report through a dangling pointer (only the rare reporting path looks it up; see
// report_unretrieved_if_alive in task_lifecycle.cpp). Defined in runtime.cpp.
extern std::mutex live_runtimes_mutex;
extern std::vector<runtime_core*> live_runtimes;
// The runtime whose shutdown sweep runs on this thread (runtime_core::destroy_pending_tasks): a
// frame destructor that spawns during the sweep gets a task that is abandoned at once instead of
// an exception thrown out of a destructor (spawn_root).
extern thread_local runtime_core* sweeping;

// The poller reaches the pool through poller_host alone (poller.hpp), the blocking pool and the
// compute arena through offload_host (offload_host.hpp), the workers through pool (pool.hpp). The
// interfaces come first among the bases: pool's constructor hands the poller a poller_host that
// must already be constructed.
class runtime_core final : public poller_host, public offload_host, public pool {
 public:
  explicit runtime_core(runtime_options options);
  // A frame_executor's core (frame_executor.hpp): one worker without a thread, driven by the host
  // thread; the poller thread is started as usual.
  struct hosted_t {};
  runtime_core(runtime_options options, hosted_t);
  ~runtime_core();
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;

  void start();
  // runtime::shutdown (see runtime.hpp): cancels every task, waits up to `grace` for them to end,
  // then stops the threads and destroys what is left. Returns how many tasks were left. Later
  // calls return 0 at once.
  std::size_t shutdown(std::chrono::nanoseconds grace);

  // poller_host: the poller's expired timers and ready descriptors (pool::inject_batch).
  void inject_batch(void* const* tasks, std::size_t count) override {
    pool::inject_batch(tasks, count);
  }
  // poller_host: every worker parked and the injection queue empty.
  [[nodiscard]] bool pool_idle() const noexcept override {
    return idle.all_parked() && injector.length() == 0;
  }
  // Reports through options.log (or stderr). Never throws: a hook that throws falls back to
  // stderr, and report_composed (offload_host.hpp) turns a failure to compose the message (out
  // of memory) into a line on stderr. Overrides the three bases' report.
  void report(std::string_view message) const noexcept override;
  // report without the deterministic mode's seed prefix.
  void report_plain(std::string_view message) const noexcept;
  // offload_host: a pool thread's or a TBB thread's wake-up of a waiting task (task_header.hpp's
  // wake, bound to this runtime).
  void wake_from_offload(std::coroutine_handle<> waiter) noexcept override;
  void compute_call(bool started) noexcept override {
    // Ordering: relaxed (pool.hpp, compute_calls).
    if (started) {
      compute_calls.fetch_add(1, std::memory_order_relaxed);
    } else {
      compute_calls.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // pool: cancels the tasks of a worker's registry shard, once per shutdown request.
  void cancel_shard_for_shutdown(registry_shard& shard) noexcept override;
  [[nodiscard]] runtime_stats stats() const noexcept;

  // options, sim, trace, injector, idle, poller and the workers' list: pool.hpp.
  detail::registry registry;
  // Tasks of other runtimes on this one, and tasks of this one elsewhere (weft::resume_on).
  detail::visitors visitors;
  // Offload: the blocking pool of to_thread (shared with its threads, which may outlive the
  // runtime while a straggling call ends) and the oneTBB arena of compute.
  std::shared_ptr<blocking_pool> blocking;
  compute_arena_ptr compute;
  // A frame_executor's core: workers[0] has no thread; shutdown drives it from the calling thread
  // (drive_hosted_for_shutdown, frame_executor.cpp).
  const bool hosted = false;

  // Completions and spawns from threads outside the pool.
  std::atomic<std::uint64_t> foreign_spawned{0};
  std::atomic<std::uint64_t> foreign_completed{0};
  // Unlisted tasks (never started) that shutdown found still queued and listed in the foreign
  // shard for its sweep (registry.hpp). Written by shutdown after the workers joined; relaxed, a
  // count.
  std::atomic<std::uint64_t> unlisted_swept{0};

  // Spawned tasks that no worker has started, and so listed, yet (registry.hpp): they wait in a
  // queue, so the registry does not count them.
  [[nodiscard]] std::uint64_t unlisted_queued() const noexcept;
  // Spawned tasks not yet finished: the registry's and the queued unlisted ones.
  [[nodiscard]] std::uint64_t live_tasks() const noexcept {
    // Queued ones first: a task adopted after that read is in the registry's count read next, so
    // none is missed (one adopted in between is counted twice for that instant: the grace loop
    // waits a round longer, never a round too short).
    const std::uint64_t queued = unlisted_queued();
    return queued + registry.size();
  }
  // Reports of unretrieved exceptions running from handles dropped outside the pool, which pinned
  // this runtime under live_runtimes_mutex (runtime.cpp); shutdown waits for them.
  std::atomic<int> reporters{0};
  // Wake-ups from threads outside this runtime (detail::wake) between their first and last touch
  // of it. Once such a wake-up has queued its task, the task may run, end, and let this runtime's
  // owner destroy it while the waking thread still counts the item and notifies a worker
  // (pool::inject): shutdown waits for this count to drain before the runtime is freed.
  std::atomic<int> wakers{0};
  // State of the layers above, one per key (detail/runtime_extension.hpp), in order of creation;
  // guarded by extensions_mutex. Shutdown destroys them after the task sweep.
  std::mutex extensions_mutex;
  std::vector<std::pair<const void*, std::unique_ptr<runtime_extension>>> extensions;
  void destroy_extensions() noexcept;

 private:
  // Both public constructors, once the options are validated.
  runtime_core(runtime_options validated, bool hosted, int);
  // The workers pool::workers lists (declared after the registry, whose shards they hold, so
  // they are destroyed before it).
  std::vector<std::unique_ptr<worker>> owned_workers_;

  // The last step of shutdown, on the calling thread with every runtime thread stopped. Returns
  // how many tasks were still unfinished.
  std::size_t destroy_pending_tasks(std::chrono::nanoseconds grace);
  // How many tasks left after a grace the sweep names, one report line each.
  static constexpr std::size_t max_named_stragglers = 16;

  bool started_ = false;
};

// Shutdown of a hosted core: runs its ready tasks on the calling thread for a short slice
// (frame_executor.cpp).
void drive_hosted_for_shutdown(runtime_core& core) noexcept;

}  // namespace weft::detail
