// weft/scheduler/diagnostics.hpp: what runtime::dump() and runtime::counters() report
// (asyncio.all_tasks() with Task.print_stack(), and a Prometheus exporter's view of the pool).
//
//   std::cerr << rt.dump().to_string();
//   //   task 'fetch_all' waiting on semaphore::acquire for 1.204 s
//   //     fetch_all -> gather_pages -> fetch_one
//   serve_metrics(rt.counters().to_prometheus());
//
// Both are snapshots taken from any thread without stopping the runtime: a dump lists every live
// task even while a worker is busy in one task for seconds (docs/diagnostics.md explains how).
// runtime_options::dump_on_signal prints the dump to stderr on SIGUSR1.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/scheduler/export.hpp>

namespace weft {

// One live spawned task in a dump.
struct task_dump {
  enum class state_type {
    running,     // a worker runs it now (`worker`)
    ready,       // started and queued to run again, or suspended outside a cancellable wait
    waiting,     // suspended in a cancellable wait (`waiting_on`)
    cancelling,  // cancellation requested and not yet delivered
  };
  std::string name;  // spawn_named's name, or "" for an unnamed task
  state_type state = state_type::ready;
  // How long it has been in `state` (running, waiting), at the coarse clock's resolution (1-4 ms);
  // empty where the runtime does not record it (ready, cancelling).
  std::optional<std::chrono::milliseconds> in_state;
  // Waiting: what it waits on ("mutex::lock", "sleep", "join_handle (a spawned task)", ...).
  std::string waiting_on;
  // Waiting: the coroutines from the task's own down to the innermost awaited weft::task, each
  // named by its function (demangled; the program must export its symbols, e.g. linked with
  // -rdynamic, else "coroutine at <module>+0x<offset>"). Empty if the task is not waiting, or if
  // it moved on while the dump read its chain.
  std::vector<std::string> await_chain;
  // Debug mode (runtime_options::debug, WEFT_DEBUG=1): where each coroutine of await_chain is
  // defined, "file:line" from the module's DWARF line table ("" where it has none: built without
  // -g, or stripped); empty outside debug mode.
  std::vector<std::string> await_sources;
  std::optional<std::size_t> worker;  // running: the worker's index
  // Waiting on a weft::fork_join of the tuple or array form: its children (named "fork_join
  // child <i>"), each with its own state and await chain, in argument order. A child that already
  // finished is left out. Children are seen only once one of them has reached a cancellable wait
  // (fork_join publishes its wait lazily, fork_join.cpp); until then the caller shows as ready.
  std::vector<task_dump> children;
};

// One worker in a dump.
struct worker_dump {
  std::size_t index = 0;
  bool parked = false;
  // The worker runs a task now, and how long that run has lasted (one resumption with the tasks
  // it woke on this worker): a long one is a task that blocks or computes without suspending.
  bool running = false;
  std::chrono::milliseconds running_for{0};
  std::size_t queued = 0;  // tasks in its local queue
};

struct runtime_dump {
  std::vector<task_dump> tasks;
  std::vector<worker_dump> workers;
  // Spawned tasks that no worker has started yet: they wait in a queue (a worker's or the
  // injection queue) and are listed in `tasks` once a worker takes them to run.
  std::size_t not_started = 0;
  // A readable report: one line per worker, then one paragraph per task with its await chain
  // ("main -> fetch_all -> fetch_one -> waiting on semaphore::acquire for 1.204 s").
  [[nodiscard]] WEFT_API std::string to_string() const;
};

WEFT_API const char* to_string(task_dump::state_type state) noexcept;

// One worker's counters.
struct worker_stats {
  std::size_t index = 0;
  double busy_seconds = 0;        // time awake (running tasks or searching), not parked
  std::uint64_t spawned = 0;      // tasks spawned on it
  std::uint64_t completed = 0;    // spawned tasks that finished on it
  std::uint64_t stolen = 0;       // tasks it stole from other workers
  std::uint64_t parks = 0;        // times it went to sleep
  std::uint64_t local_queue = 0;  // tasks in its local queue now
  bool parked = false;            // asleep now
};

// Everything runtime::stats() reports, per worker where it is kept per worker, plus the gauges of
// the queues. Cumulative counters only grow (busy_seconds may step back by microseconds when it
// is read in the middle of a park).
struct runtime_counters {
  std::vector<worker_stats> workers;
  std::uint64_t spawned = 0;  // every task spawned, on a worker or from another thread
  std::uint64_t completed = 0;
  std::uint64_t injected = 0;         // tasks that entered through the injection queue
  std::uint64_t injection_queue = 0;  // tasks waiting in it now
  std::uint64_t parked_workers = 0;   // workers asleep now
  std::uint64_t live_tasks = 0;
  std::uint64_t timers = 0;
  std::uint64_t blocking_threads = 0;  // to_thread's pool: threads now
  std::uint64_t blocking_busy = 0;     // threads running a call now
  std::uint64_t blocking_queued = 0;   // calls waiting for a thread
  std::uint64_t compute_running = 0;

  // The Prometheus text exposition format (version 0.0.4), each metric with its # HELP and
  // # TYPE lines, names prefixed with `prefix` ("weft_worker_busy_seconds_total{worker="0"} 1.5").
  // `labels` (e.g. `runtime="api"`, already escaped) is added to every sample, so that several
  // runtimes can share one exposition.
  [[nodiscard]] WEFT_API std::string to_prometheus(std::string_view prefix = "weft",
                                                   std::string_view labels = "") const;
};

}  // namespace weft
