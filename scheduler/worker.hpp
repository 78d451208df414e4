// scheduler/worker.hpp: one thread of the pool and the loop it runs.
//
// Where a worker looks for its next task, in order:
//   1. every `injector_interval` ticks (the maintenance tick), the tasks that yielded since the
//      last flush are moved into the deque (where they run next, and where thieves can take them),
//      then the injection queue is tried first, so that neither yielders nor work from outside
//      the pool (timers, sockets, other threads) is starved by a busy local queue;
//   2. the LIFO slot: the first task woken by the task that just ran, run next on this worker
//      while its data is hot (at most `max_lifo_polls` times in a row, so two tasks waking each
//      other forever cannot starve the rest);
//   3. its own deque, bottom first (LIFO: fork-join goes depth first);
//   4. the tasks that yielded since the last flush, moved back into the deque;
//   5. the injection queue, taking a batch;
//   6. searching: stealing half of another worker's deque, spinning for `spin_before_park`;
//   7. parking (idle.hpp explains why no wake-up is lost). With runtime_options::io_driver_in_park
//      a parking worker first tries to take the I/O driver role and sleeps in epoll_wait itself
//      (poller.hpp), so readiness and timers wake it directly and what they resume lands on its
//      own deque; the other parked workers sleep on their futex as before. A busy worker's
//      maintenance tick runs one non-blocking driver cycle when the role is free, so I/O is not
//      starved by a pool that never parks (tokio's event_interval).
//
// Order within one task's batch: the tasks that one resumption makes ready (wakes and spawns) run
// in the order they were made ready, as asyncio's ready queue runs them (a semaphore released
// three times resumes its waiters 1, 2, 3; three spawns start 1, 2, 3). The first wake-up of a
// resumption that has made nothing else ready takes the LIFO slot; every later one, and every
// spawn, goes onto the deque; when the resumption ends, the part of the deque it pushed is
// reversed (order_batch), so that the owner's LIFO pops take it oldest first. Between batches the
// deque stays LIFO (fork-join still goes depth first), and thieves still take the oldest.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <weft/scheduler/detail/await_trampoline.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>  // this_worker
#include <weft/scheduler/detail/timer_entry.hpp>

#include "deque.hpp"
#include "injector.hpp"
#include "parker.hpp"
#include "pool.hpp"
#include "registry.hpp"
#include "worker_identity.hpp"

namespace weft::detail {

class runtime_core;

// Tuning constants, each measured with bench/run (see docs/architecture.md).
inline constexpr std::size_t local_queue_capacity = 256;  // tokio's choice; a power of two
inline constexpr std::uint32_t injector_interval = 61;    // a prime, as in Go and tokio
inline constexpr std::uint32_t max_lifo_polls = 3;
inline constexpr int task_budget = 128;  // ready awaits before a forced yield
inline constexpr std::size_t injector_batch = 32;
inline constexpr std::size_t max_steal_batch = local_queue_capacity / 2;
// Fork pops in a row before the deque enters light mode (deque.hpp): the mode costs one
// heavy_fence (2-4 us) to enter, about what this many StoreLoad fences cost.
inline constexpr std::uint32_t light_after_fork_pops = 1024;
// Rounds of search() that spin with `pause` before each further round yields the CPU.
inline constexpr std::uint32_t search_pause_rounds = 4;
// `pause` spins of a parking worker waiting for the watchdog to end its cycle and free the I/O
// driver role (worker::park_as_driver): about 20 us at 35-40 ns a pause on this VM's CPUs, many
// times the cycle's few microseconds.
inline constexpr std::uint32_t max_driver_wait_spins = 512;

struct worker_counters {
  // Written only by the owning worker (relaxed); read by stats() from any thread.
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> stolen{0};
  std::atomic<std::uint64_t> parked{0};
  // Tasks this worker took from a queue and listed (worker::admit): its own spawns, other
  // workers' and foreign ones. Ordering: stored with release after the listing, read with acquire
  // by runtime_core::unlisted_queued().
  std::atomic<std::uint64_t> adopted{0};
  // This worker's spawns that a queue holds unlisted until some worker starts them
  // (spawn_root). Ordering: relaxed, stored before the push whose release publishes the task;
  // unlisted_queued() reads the adoptions first (the argument there).
  std::atomic<std::uint64_t> spawned_unlisted{0};

  // runtime::counters() and runtime::dump() (docs/diagnostics.md). Single writer, the owner;
  // relaxed: each is a statistic read on its own, nothing is published through it. A reader
  // combining them (busy time = busy_ns + the running interval) may see a park half done and
  // count a few microseconds too many, once.
  std::atomic<std::uint64_t> busy_ns{0};         // awake time before the last park
  std::atomic<std::uint64_t> awake_since_ns{0};  // steady_clock ns when it last woke (or started)
  std::atomic<bool> asleep{false};               // parked now
  // The coroutine the current run_task resumed (null between tasks) and since when
  // (coarse_clock_ms, from the worker's clock stamp `clock_ms_`: at most one maintenance tick
  // early): a dump names the running task and how long it has run.
  std::atomic<void*> running{nullptr};
  std::atomic<std::uint32_t> running_since{0};

  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

class alignas(64) worker : public worker_identity {
 public:
  // `shared`: what the runtime's workers share (pool.hpp); `owner`: the runtime (an identity:
  // worker_identity.hpp); `shard`: this worker's registry shard.
  worker(pool& shared, runtime_core& owner, std::size_t index, registry_shard& shard);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start();
  void join();

  // Owner thread only: makes `task` runnable here (stealable by others), waking a sleeper if
  // needed.
  void push_local(void* task);
  // Owner thread only: queues a fork_join child (fork_join.cpp). Like push_local, but outside the
  // running resumption's batch: the children are pushed newest last so that the owner's pops
  // take them in order, and order_batch must not reverse them.
  // (Defined in fork_join.cpp, its only user.) Does not wake a sleeper: the caller pushes all
  // its children, then calls notify_forked() once.
  void push_fork(void* task);
  void notify_forked();
  // Owner thread only: takes `task` back from the bottom of the deque if it is still there (not
  // stolen, nothing pushed above it) and the running task's budget allows one more step (so a
  // chain of hand-offs returns to the loop now and then, for timers and injected work).
  // After `light_after_fork_pops` such pops in a row (the deque never ran dry), the deque goes
  // into light mode (deque.hpp), where these pops need no StoreLoad fence; it leaves the mode
  // when it runs dry or a maintenance tick finds no fork pop since the last one.
  bool pop_fork(void* task) noexcept {
    if (spend_budget()) return false;
    if (deque_.light()) {
      forked_since_tick_ = true;
    } else if (++fenced_fork_pops_ >= light_after_fork_pops) [[unlikely]] {
      enter_light_mode();
    }
    return deque_.pop_if(task);
  }
  // Owner thread only: `task` runs right after the current one (LIFO slot) if it is the first task
  // the current one makes ready, else after the ones made ready before it (see the file comment).
  void push_lifo(void* task);
  // Owner thread only: runs a new task now, nested in the running one, until it first suspends
  // or finishes (spawn_eager); the running task continues afterwards.
  void run_eager(void* task);
  // Owner thread only: `task` runs after the tasks ready now, or at the next maintenance tick
  // (within `injector_interval` ticks) if this worker's deque does not run dry before.
  void push_yielded(void* task) { yielded_.push_back(task); }

  // Cooperative budget of the running task (owner thread only).
  bool spend_budget() noexcept { return --budget_ <= 0; }

  [[nodiscard]] bool has_stealable_work() const noexcept { return deque_.size_estimate() > 0; }
  // Tasks in this worker's deque now (any thread; a snapshot for runtime::counters()).
  [[nodiscard]] std::size_t local_queue_depth() const noexcept {
    return static_cast<std::size_t>(deque_.size_estimate());
  }
  // Work in the injection queue or any worker's deque (seq_cst loads, for idle.hpp's re-checks).
  [[nodiscard]] bool work_visible() const noexcept;

  worker_counters counters;
  parker park;

  // spawn_root, before it pushes a task unlisted (registry.hpp). Owner thread only.
  void count_unlisted_spawn() noexcept { worker_counters::bump(counters.spawned_unlisted); }

  // Shutdown only, after every thread joined: drops queued tasks without running them, except
  // tasks no worker listed yet (never started), which go into `unlisted` (registry.hpp).
  void clear_queues(std::vector<task_header*>& unlisted);

  // ---- Hosted mode (frame_executor.cpp): a worker without a thread, whose loop the host thread
  // runs in slices. It never searches, steals or parks; its runtime has no other worker. ----
  // The next ready task: the LIFO slot (at most max_lifo_polls times in a row), then next_task().
  void* next_hosted_task();
  void run_hosted_task(void* task) {
    budget_ = task_budget;
    resume(task);
  }
  // What a queue item taken to run resumes: the item itself (a frame), or, for a task that no
  // worker listed yet (its first run), its frame once this worker listed it (registry.hpp). Owner
  // only, on every path that takes an item from a queue to run it: run(), next_hosted_task() and
  // collect_ready().
  void* admit(void* item) noexcept {
    if (task_header* task = unlisted_task_in(item)) return adopt(task);
    return item;
  }
  // Ready tasks (the host thread only: the LIFO slot and the yielders are the owner's).
  [[nodiscard]] std::size_t hosted_ready() const noexcept;
  // Makes `w` the calling thread's current worker; returns the previous one.
  static worker* exchange_current(worker* w) noexcept;

 private:
  void run();
  // Deterministic mode's loop (simulation.hpp), instead of run()'s.
  void run_deterministic();
  // Deterministic mode: moves every runnable task into `ready`.
  void collect_ready(std::vector<void*>& ready);
  [[gnu::noinline]] void push_overflowing(void* task);
  // Between two tasks: unlinks tasks that finished elsewhere and serves runtime::shutdown's
  // cancellation request (next_task's first step; the deterministic loop's too).
  void serve_requests();
  void* next_task();
  void* search();
  [[gnu::noinline]] void enter_light_mode() noexcept;
  // Whether any worker's deque is in light mode, or any worker is in a spawn burst (acquire loads
  // of the flags; idle.hpp): a parking worker then runs the heavy fence.
  [[nodiscard]] bool any_deque_light() const noexcept;
  [[gnu::noinline]] void enter_burst() noexcept;
  void leave_burst() noexcept;
  void leave_light_mode() noexcept;
  void* steal_from_others();
  void* take_injected();
  void park_until_notified();
  // Driver-in-park: sleeps as the I/O driver if the role is free (true), else false (the caller
  // parks on the futex). Called with the worker counted parked (idle.hpp).
  bool park_as_driver();
  // Driver-in-park: one non-blocking driver cycle (at a maintenance tick, or while searching), if
  // the role is free and descriptors are registered. Where the tasks it finds go:
  enum class found_tasks {
    own_deque,        // this worker's deque (the owner pops them next, in the order found)
    injection_queue,  // behind everything queued, visible to every worker (FIFO)
  };
  void poll_driver_when_busy(found_tasks where);
  // Makes the tasks the driver cycle found runnable here (the first found runs first).
  void take_driven();
  void* adopt(task_header* task) noexcept;
  void run_task(void* task);
  void run_batch(void* task);
  [[gnu::noinline]] void order_batch();
  static void resume(void* task) noexcept;
  void resume_timed(void* task);
  void flush_yielded();

  pool& pool_;
  registry_shard& shard_;
  work_deque<local_queue_capacity> deque_;
  void* lifo_slot_ = nullptr;
  // Tasks pushed onto the deque by the running resumption (owner only; reset by run_batch).
  std::uint32_t batch_pushed_ = 0;
  // Spawn burst (push_local): once a resumption has pushed burst_after tasks, its later pushes
  // check for a worker to wake past a compiler barrier instead of a seq_cst fence, and parking
  // workers run the heavy fence in its place, as for a deque in light mode (idle.hpp,
  // maybe_should_wake_for_local_work_light). `burst_` is what parking workers read (owner-written:
  // relaxed store then heavy_fence on entry, release store on leaving, at the resumption's end);
  // `bursting_` is the owner's own copy.
  static constexpr std::uint32_t burst_after = 256;
  std::atomic<bool> burst_{false};
  bool bursting_ = false;
  std::vector<void*> yielded_;
  injector::consumer_token injector_token_;
  std::uint32_t tick_ = 0;
  // coarse_clock_ms() as of this worker's start, its last wake-up or its last maintenance tick:
  // the start time run_task gives the dump (worker_counters::running_since). Not a clock read per
  // task: that was 5.5 ns of a 9 ns yield on this VM (the vDSO's coarse clock). So the time a
  // dump gives for a running task counts from up to 60 runs before it started (the previous
  // tick), which adds microseconds when those runs were short, as they are in the case the dump
  // is for (one task holding its worker for seconds). Owner only.
  std::uint32_t clock_ms_ = 0;
  std::uint32_t rng_;
  int budget_ = task_budget;
  // Light mode's bookkeeping (pop_fork): fenced fork pops since the deque last ran dry, and
  // whether a light one happened since the last maintenance tick. Owner only.
  std::uint32_t fenced_fork_pops_ = 0;
  bool forked_since_tick_ = false;
  bool searching_ = false;
  // runtime::shutdown asked this worker to cancel its tasks, and it did (once per runtime).
  bool cancelled_for_shutdown_ = false;
  std::uint32_t hosted_lifo_polls_ = 0;  // hosted mode: LIFO-slot tasks run in a row
  // Driver-in-park: the waiters a driver cycle resumed and its timer callbacks (owner only;
  // members so that a cycle allocates nothing once warm).
  std::vector<void*> driven_;
  std::vector<timer_entry*> driven_callbacks_;
  std::thread thread_;
};

// The worker running on this thread, if any: this_worker, declared in
// detail/runtime_entry_points.hpp. initial-exec: a worker looks itself up on every spawn, wake and
// fork; the default TLS model of a shared library would make each lookup a call to
// __tls_get_addr. Inline, so that a lookup is one load.
inline worker* current_worker() noexcept { return this_worker; }

}  // namespace weft::detail
