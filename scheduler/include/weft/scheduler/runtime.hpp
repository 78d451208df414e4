// weft/scheduler/runtime.hpp: weft::runtime and weft::run, Python's event loop and asyncio.run.
//
//   int main() { return weft::run(async_main()); }
//
// A runtime owns a pool of worker threads that run tasks (work stealing: each worker has its own
// deque and steals from the others when idle) and one I/O poller thread that owns the timers and
// socket readiness. Several runtimes can live in one process; none is global.
//
// Shutting a runtime down (runtime::shutdown, or its destructor) works like the end of
// asyncio.run: it refuses new work from other threads, cancels every task, and lets the tasks
// run their cleanup for up to a grace period (runtime_options::shutdown_timeout, default 5 s);
// then it stops its threads and destroys every task still unfinished where it waits, reporting
// each through the log hook. A join_handle that outlives its runtime keeps its task's frame until
// it is dropped; awaiting it throws weft::runtime_stopped (also for a task that ended because the
// shutdown cancelled it). docs/architecture.md, "Shutdown", has the whole sequence.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/diagnostics.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/io.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {
struct runtime_access;
}

struct runtime_options {
  // Worker threads; 0 means std::thread::hardware_concurrency().
  std::size_t worker_threads = 0;
  // How long an idle worker keeps looking for work (stealing, polling the injection queue) before
  // it parks. Waking a parked worker costs a futex wake-up (about 20 us across cores on a small
  // VM), so a short spin catches work that arrives just after a worker ran dry. Zero parks at once
  // (for embedders that count every cycle); the runtime uses no CPU once every worker has parked.
  std::chrono::microseconds spin_before_park{50};
  // The I/O driver in park (docs/architecture.md, "The I/O poller"): a worker with nothing to do
  // sleeps in epoll_wait itself, so a socket's readiness or a timer wakes the worker that runs
  // the task (one context switch) instead of the poller thread, which then woke a worker (two).
  // The poller thread remains as a fallback for the moments no worker can drive. False keeps the
  // poller thread as the only driver. Ignored (always the poller thread) with virtual_time,
  // deterministic_seed, a trace file, and in a frame_executor.
  bool io_driver_in_park = true;
  // Threads are named "<thread_name>-w<i>" and "<thread_name>-io" (Linux keeps 15 characters).
  std::string thread_name = "weft";
  // A paused, virtual clock for tests and simulations: time stands still while any task is
  // runnable and jumps to the next timer's deadline whenever every worker is idle, so sleeps,
  // timeouts and backoffs complete at once and in a reproducible order. weft::now() reads it;
  // sleep, sleep_until, timeout and wait use it. Real time still governs I/O readiness.
  bool virtual_time = false;
  // Deterministic simulation (docs/embedding.md): one worker thread, virtual time, and every
  // choice the scheduler makes (which ready task runs next, which of several timers due at the
  // same instant fires first) drawn from a generator seeded with this value, so the same program
  // with the same seed runs its tasks in the same order, bit for bit, on every run; runtime::
  // event_log() records that order. The environment variable WEFT_SEED (decimal or 0x-hex)
  // overrides the seed of every deterministic runtime, to replay a failing seed; reports through
  // `log` name the seed. Spawns from other threads, I/O readiness, to_thread, compute and
  // resume_on arrive at real-time moments and are outside the guarantee. Implies worker_threads
  // = 1 and virtual_time. Ignored by a frame_executor (its host thread is its scheduler).
  std::optional<std::uint64_t> deterministic_seed;
  // Debug checks, as asyncio's debug mode (also turned on by the environment variable
  // WEFT_DEBUG=1): reports, through `log`, a join_handle dropped while its task still runs (use
  // detach() to mean it), a task that finished normally after a cancellation was delivered to it
  // (it swallowed the cancellation), and a task that ran more than 100 ms without suspending
  // (a blocking call on a worker: move it to weft::to_thread, or a CPU loop: weft::compute).
  // Exceptions nobody retrieved are reported in every mode.
  bool debug = false;
  // How long destroying the runtime waits for its cancelled tasks to end before it destroys them
  // where they wait (runtime::shutdown's grace). Zero destroys them at once, without cancelling.
  std::chrono::milliseconds shutdown_timeout{5000};
  // The blocking pool of weft::to_thread (to_thread.hpp): at most this many threads (tokio's
  // default), started on demand; one that stayed idle for blocking_keep_alive exits.
  std::size_t blocking_threads = 512;
  std::chrono::milliseconds blocking_keep_alive{10000};
  // Calls that wait for a thread behind a full pool. A submit beyond this bound waits outside the
  // queue (back-pressure: its task stays suspended until a slot frees); the queue never grows past
  // it.
  std::size_t blocking_queue = 4096;
  // How long destroying the runtime waits for blocking calls still running (after its tasks were
  // cancelled and destroyed); each one still running then is named through `log` and left to
  // finish on its own thread. Calls that never started are dropped without running.
  std::chrono::milliseconds blocking_shutdown_timeout{5000};
  // Threads of the oneTBB arena of weft::compute (compute.hpp); 0 means the CPUs this process may
  // use: its affinity mask, capped by the cgroup's CPU quota.
  std::size_t compute_threads = 0;
  // A trace of the run (docs/diagnostics.md, "Tracing"): the Chrome trace event format (JSON) that
  // Perfetto (ui.perfetto.dev), chrome://tracing and speedscope open, with a track per worker, the
  // poller and each blocking-pool thread, a slice per task run, arrows from spawn to first run and
  // from wake to resume, timers, I/O and counters. Written when the runtime shuts down. Empty: no
  // trace, and each hook costs one predictable branch. The environment variable WEFT_TRACE=path
  // overrides it for every runtime of the process (the second writes path.2, and so on).
  std::string trace_file;
  // SIGUSR1 prints runtime::dump() of this runtime to stderr (as a JVM prints its threads on
  // SIGQUIT). The handler only writes a byte to a pipe; a thread of weft's formats and prints.
  // The handler is installed by the first runtime that asks, for the process, and stays.
  bool dump_on_signal = false;
  // Where the runtime reports problems nobody else can see (an exception of a detached task that
  // nobody retrieved). Called from any thread. Default: a line on stderr.
  std::function<void(std::string_view)> log;
};

// Counters since the runtime started; each is exact once the runtime is idle.
struct runtime_stats {
  std::uint64_t spawned = 0;     // tasks spawned
  std::uint64_t completed = 0;   // spawned tasks that finished
  std::uint64_t stolen = 0;      // tasks moved between workers by stealing
  std::uint64_t parked = 0;      // times a worker went to sleep
  std::uint64_t injected = 0;    // tasks that entered through the injection queue
  std::uint64_t live_tasks = 0;  // spawned tasks not yet finished
  std::uint64_t timers = 0;      // timers waiting in the timer wheel
  // The blocking pool of to_thread, now (not cumulative).
  std::uint64_t blocking_threads = 0;  // threads in the pool, running a call or idle
  std::uint64_t blocking_idle = 0;     // idle threads (they exit after blocking_keep_alive)
  std::uint64_t blocking_queued = 0;   // calls waiting for a thread (at most blocking_queue)
  std::uint64_t blocking_held = 0;     // submits waiting for a queue slot (back-pressure)
  std::uint64_t compute_running = 0;   // compute() calls submitted and not yet ended
};

// One entry of a deterministic runtime's event log (runtime::event_log()). Ids are given in the
// order tasks are spawned, from 1, so they are the same on every run of the same seed; a resumed
// coroutine that is not a task's own frame (a nested co_await woken inside a task) gets an id from
// the same counter when it is first resumed.
struct task_event {
  enum class kind : unsigned char {
    spawned,    // `task` was spawned by `parent` (0: from outside the runtime)
    resumed,    // the scheduler picked `task` and resumed it
    completed,  // `task` finished
  };
  kind what = kind::spawned;
  std::uint64_t task = 0;
  std::uint64_t parent = 0;
  std::uint64_t time_ms = 0;  // the virtual clock, in milliseconds since the runtime started
  friend bool operator==(const task_event&, const task_event&) = default;
};

// One live task as runtime::tasks() reports it.
struct task_info {
  enum class state_type {
    runnable,    // started, and running or queued to run again
    waiting,     // suspended in a cancellable wait (sleep, I/O, join, lock, ...)
    cancelling,  // cancellation requested and not yet delivered
  };
  std::string name;  // spawn_named's name, or "" for an unnamed task
  state_type state = state_type::runnable;
};

class WEFT_API runtime {
 public:
  runtime();
  explicit runtime(runtime_options options);
  // Stops the threads and destroys the tasks still pending. Must not be called from one of this
  // runtime's own threads.
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // Starts `work` on this runtime from any thread: a task, an awaitable that stands for one (a
  // weft::timeout), or `callable(args...)` returning a task, with the callable and copies of the
  // arguments stored in the task's frame (see spawn.hpp on lambda captures).
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  auto spawn(W&& work, Args&&... args) {
    return detail::spawn_on(core_,
                            detail::make_task(std::forward<W>(work), std::forward<Args>(args)...));
  }

  // Same as spawn(work), with a name shown by diagnostics (tasks(), reports). `name` must outlive
  // the task (a string literal).
  template <class T>
  join_handle<T> spawn_named(const char* name, task<T> work) {
    return spawn(detail::named(name, std::move(work)));
  }

  // Runs `work` on the pool and blocks the calling thread until it finishes; returns its value or
  // rethrows its exception. Calling it from a worker thread (of any runtime) would block a thread
  // the pool needs, so it throws std::logic_error instead.
  template <class T>
  T block_on(task<T> work) {
    detail::require_not_on_worker("weft::runtime::block_on");
    auto handle = spawn(std::move(work));
    detail::block_until_finished(handle.header());
    return handle.take_result();
  }
  template <task_convertible A>
  auto block_on(A&& work) requires(!std::is_lvalue_reference_v<A>) {
    return block_on(typename A::task_type(std::move(work)));
  }

  // Stops the runtime (asyncio.run's ending): from now on spawns from other threads throw
  // runtime_stopped, and every task is cancelled (tasks spawned by the pool's own tasks meanwhile
  // start cancelled); waits up to `grace` for them to end, then stops the worker and poller
  // threads and destroys the tasks still unfinished where they wait (waiters unlink themselves
  // from every primitive, join waiters and block_on callers get runtime_stopped), reporting each
  // through the log hook. Returns how many tasks were destroyed unfinished. A zero grace cancels
  // nothing and destroys every unfinished task at once. A task that runs without suspending keeps
  // its worker, and this call waits for it. Later calls, and the destructor after it, return at
  // once. Must not be called from one of this runtime's own threads (std::logic_error).
  std::size_t shutdown(std::chrono::milliseconds grace);

  [[nodiscard]] std::size_t worker_count() const noexcept;

  // The spawned tasks that have started and not finished, with their names and states
  // (asyncio.all_tasks). A task queued that no worker has started yet is not listed; stats()'s
  // live_tasks and dump()'s not_started count it. Complete even while a worker is busy in one
  // long task. Meant for diagnostics, not hot paths.
  [[nodiscard]] std::vector<task_info> tasks() const;
  [[nodiscard]] runtime_stats stats() const noexcept;
  // Every live task with its state, how long it has been in it, what it waits on and its await
  // chain, and every worker's state (diagnostics.hpp; asyncio.all_tasks() with print_stack()).
  // Any thread, without waiting for the workers.
  [[nodiscard]] runtime_dump dump() const;
  // stats() per worker, with busy time and queue depths, and a Prometheus rendering.
  [[nodiscard]] runtime_counters counters() const;

  // Deterministic mode only (runtime_options::deterministic_seed): the seed in use (WEFT_SEED's,
  // if set), and the events so far. A log is comparable between runs when the program's tasks
  // have all ended (a task still running when block_on returns races with the shutdown). Without
  // deterministic mode: no seed and an empty log.
  [[nodiscard]] std::optional<std::uint64_t> seed() const noexcept;
  [[nodiscard]] std::vector<task_event> event_log() const;

 private:
  friend class io_source;
  friend struct detail::runtime_access;  // frame_executor.hpp: resume_on(runtime&)
  detail::runtime_core* core_;
};

// asyncio.run: creates a runtime, runs `main` to completion on it, destroys the runtime (and any
// task `main` left running), and returns main's value or rethrows its exception.
template <class T>
T run(task<T> main, runtime_options options = {}) {
  runtime rt(std::move(options));
  return rt.block_on(std::move(main));
}

}  // namespace weft
