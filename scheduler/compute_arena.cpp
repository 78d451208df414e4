// scheduler/compute_arena.cpp: weft::compute on a oneTBB task_arena owned by the runtime.
//
// The path of one call (compute.hpp has the awaiter):
//   1. compute_prepare, on the weft worker: a record (the call's state on the library side) is
//      allocated before the cancel hook is published, so a cancel always finds it.
//   2. compute_start, on the weft worker: the record is enqueued into the arena
//      (task_arena::enqueue returns at once). The worker goes on with other tasks; no weft thread
//      ever calls task_arena::execute or waits on a task_group.
//   3. On a TBB thread: an isolated task_group_context is created, marked cancelled if a cancel
//      came first, and published in the record; fn runs inside a task_group bound to it, so every
//      parallel algorithm fn starts is a child of that context and stops at its next chunk once
//      the context is cancelled.
//   4. On the same TBB thread, after fn returned: under the arena's lock the context is withdrawn
//      from the record, the record leaves the list of running calls, and the task is woken
//      (detail::wake, the path of timers and sockets). The TBB thread touches nothing of the call
//      after that lock: the task may resume and free the record at once.
//
// A cancel (compute_cancel) takes the same lock: it marks the record and cancels the published
// context if there is one. Both sides read and write the record's context pointer only under the
// lock, so a cancel never touches a context that is gone, and a context published after a cancel
// starts cancelled.
//
// Latency: when the arena starts, the runtime's own threads (workers and poller, found by the
// runtime's thread name in /proc/self/task) get a short scheduler time slice (time_slice.hpp:
// 100 us, Linux 6.12+, sched_setattr's sched_runtime for SCHED_OTHER; older kernels ignore it).
// While compute() jobs fill every core with TBB threads, a weft thread woken by a timer or a socket
// would otherwise wait until the running TBB thread's slice ends (EEVDF lets a running task finish
// its slice, about 1.4-3 ms): the event loop's latency would grow by that much (bench
// offload_latency). A waking task with a shorter slice preempts at once, and a slice changes no
// one's share of the CPU, so the jobs keep their speed beside other processes (a lower priority for
// the TBB threads, tried first, cut the latency as well but starved the jobs on a busy machine).
// TBB threads get the default slice back when they enter the arena (they inherit a short one from a
// weft thread that started them).
#include "compute_arena.hpp"

#include <sched.h>
#include <unistd.h>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <weft/scheduler/compute.hpp>

#include "offload_host.hpp"
#include "time_slice.hpp"

namespace weft::detail {

namespace {

// The library's part of one compute call.
struct compute_record {
  compute_job* job = nullptr;
  compute_arena* arena = nullptr;
  // Guarded by the arena's lock.
  tbb::task_group_context* context = nullptr;  // published while fn may run
  bool cancelled = false;
  compute_record* prev = nullptr;  // the arena's list of running calls
  compute_record* next = nullptr;
};

std::size_t cgroup_cpu_limit() noexcept {
  try {
    // cgroup v2: "max 100000" or "<quota> <period>" (microseconds).
    std::ifstream v2("/sys/fs/cgroup/cpu.max");
    std::string quota;
    long period = 0;
    if (v2 >> quota >> period && quota != "max" && period > 0) {
      const long q = std::stol(quota);
      return static_cast<std::size_t>(std::max(1L, (q + period - 1) / period));
    }
    std::ifstream v1_quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    std::ifstream v1_period("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    long q = -1;
    if (v1_quota >> q && v1_period >> period && q > 0 && period > 0) {
      return static_cast<std::size_t>(std::max(1L, (q + period - 1) / period));
    }
  } catch (...) {
    // An unreadable or malformed file means no limit we can see.
  }
  return 0;
}

// TBB's threads are started by whichever thread first needs them, often a weft worker, and a new
// thread inherits its creator's slice: every thread that enters the arena gets the default slice
// back, so the runtime's threads keep the shorter one. TBB calls this on the entering thread.
class arena_slices final : public tbb::task_scheduler_observer {
 public:
  explicit arena_slices(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) {
    observe(true);
  }
  // Before the base's destructor: TBB must stop calling this object while it is still whole.
  ~arena_slices() override { observe(false); }
  arena_slices(const arena_slices&) = delete;
  arena_slices& operator=(const arena_slices&) = delete;

  void on_scheduler_entry(bool is_worker) override {
    if (is_worker) set_own_slice(0);
  }
};

}  // namespace

std::size_t allowed_cpus() noexcept {
  std::size_t cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    cpus = static_cast<std::size_t>(CPU_COUNT(&set));
  if (cpus == 0) cpus = std::max(1u, std::thread::hardware_concurrency());
  if (const std::size_t limit = cgroup_cpu_limit(); limit != 0) cpus = std::min(cpus, limit);
  return cpus;
}

class compute_arena {
 public:
  compute_arena(offload_host& host, std::size_t threads, std::string thread_name)
      : host_(host),
        threads_(threads == 0 ? allowed_cpus() : threads),
        thread_name_(std::move(thread_name)) {}

  void prepare(compute_job* job) {
    auto* record = new compute_record;
    record->job = job;
    record->arena = this;
    job->record = record;
  }

  void start(compute_job* job) {
    auto* record = static_cast<compute_record*>(job->record);
    std::call_once(init_, [this] {
      // oneTBB's workers are shared by every arena of the process and number one less than the
      // CPUs by default, assuming the thread that calls an algorithm joins in. Nothing joins an
      // arena that is only enqueued into, so allow `threads_` workers. Never lower the default
      // (the limit is process-wide and would throttle the program's own TBB use); global_control
      // keeps the smallest active limit, so a stricter one the program set still wins.
      const auto limit = std::max<std::size_t>(
          threads_ + 1, static_cast<std::size_t>(tbb::info::default_concurrency()));
      control_.emplace(tbb::global_control::max_allowed_parallelism, limit);
      // No slot reserved for an outside thread: weft threads only enqueue.
      arena_.emplace(static_cast<int>(threads_), 0);
      arena_->initialize();
      shorten_runtime_slices(thread_name_);  // time_slice.hpp
      slices_.emplace(*arena_);
    });
    {
      std::lock_guard lock(mutex_);
      link_locked(record);
    }
    try {
      arena_->enqueue([this, record] { run(record); });
    } catch (...) {
      std::lock_guard lock(mutex_);
      unlink_locked(record);
      throw;
    }
  }

  void cancel(compute_job* job) noexcept {
    auto* record = static_cast<compute_record*>(job->record);
    std::lock_guard lock(mutex_);
    record->cancelled = true;
    if (record->context != nullptr) record->context->cancel_group_execution();
  }

  void shutdown(std::chrono::milliseconds report_after) {
    std::unique_lock lock(mutex_);
    for (compute_record* r = running_head_; r != nullptr; r = r->next) {
      r->cancelled = true;
      if (r->context != nullptr) r->context->cancel_group_execution();
    }
    if (!ended_.wait_for(lock, report_after, [&] { return running_ == 0; })) {
      host_.report_composed([&] {
        return "weft: shutdown: " + std::to_string(running_) + " compute() call(s) still running " +
               std::to_string(report_after.count()) +
               " ms after their cancellation (a loop that runs no TBB algorithm does not see "
               "it); waiting for them, since they may use their tasks' frames";
      });
      ended_.wait(lock, [&] { return running_ == 0; });
    }
  }

  [[nodiscard]] std::size_t running() const noexcept {
    std::lock_guard lock(mutex_);
    return running_;
  }

 private:
  // On a TBB thread of the arena.
  void run(compute_record* record) noexcept {
    tbb::task_group_context context(tbb::task_group_context::isolated);
    {
      std::lock_guard lock(mutex_);
      if (record->cancelled) context.cancel_group_execution();
      record->context = &context;
    }
    try {
      // run_and_wait runs fn on this (TBB) thread; parallel algorithms inside bind to `context`.
      // job->run catches fn's exceptions, so nothing is thrown here but TBB's own failures.
      tbb::task_group group(context);
      compute_job* job = record->job;
      group.run_and_wait([job] { job->run(job); });
    } catch (...) {
      // Out of memory inside TBB: fn did not run (or its result was not stored); the awaiter's
      // empty result reads as a cancelled call.
    }
    std::lock_guard lock(mutex_);
    record->context = nullptr;
    unlink_locked(record);
    // Under the lock: shutdown cannot see running_ reach zero, and let the runtime go, before
    // this wake-up is done. After the lock nothing of the call is touched (the task may free the
    // record at once).
    host_.wake_from_offload(record->job->waiter);
    ended_.notify_all();
  }

  void link_locked(compute_record* record) noexcept {
    record->prev = nullptr;
    record->next = running_head_;
    if (running_head_ != nullptr) running_head_->prev = record;
    running_head_ = record;
    ++running_;
    host_.compute_call(true);
  }
  void unlink_locked(compute_record* record) noexcept {
    (record->prev != nullptr ? record->prev->next : running_head_) = record->next;
    if (record->next != nullptr) record->next->prev = record->prev;
    record->prev = record->next = nullptr;
    --running_;
    host_.compute_call(false);
  }

  offload_host& host_;
  const std::size_t threads_;
  const std::string thread_name_;  // the runtime's, to find its threads (time_slice.hpp)
  std::once_flag init_;
  std::optional<tbb::global_control> control_;
  std::optional<tbb::task_arena> arena_;
  std::optional<arena_slices> slices_;  // after arena_: stops observing before the arena goes
  mutable std::mutex mutex_;
  std::condition_variable ended_;
  compute_record* running_head_ = nullptr;
  std::size_t running_ = 0;
};

void compute_arena_deleter::operator()(compute_arena* arena) const noexcept { delete arena; }

compute_arena_ptr make_compute_arena(offload_host& host, std::size_t threads,
                                     const std::string& thread_name) {
  return compute_arena_ptr(new compute_arena(host, threads, thread_name));
}

void compute_arena_prepare(compute_arena& arena, compute_job* job) { arena.prepare(job); }

void shutdown_compute_arena(compute_arena& arena, std::chrono::milliseconds report_after) {
  arena.shutdown(report_after);
}

std::size_t compute_running(const compute_arena& arena) noexcept { return arena.running(); }

// ---- compute.hpp's entry points that need no runtime (prepare is in offload.cpp) ----

void compute_start(compute_job* job) {
  static_cast<compute_record*>(job->record)->arena->start(job);
}

void compute_cancel(compute_job* job) noexcept {
  if (job->record != nullptr) static_cast<compute_record*>(job->record)->arena->cancel(job);
}

void compute_release(compute_job* job) noexcept {
  delete static_cast<compute_record*>(job->record);
  job->record = nullptr;
}

}  // namespace weft::detail
