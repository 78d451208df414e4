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
// Priority: the arena's threads run at nice 19 while they work in it (arena_priority below). The
// arena has as many threads as the process has CPUs, so while compute() jobs run every core is
// busy with them; at equal priority a weft worker or the poller thread that wakes (a timer, a
// socket) waits for the running TBB thread's time slice to end (EEVDF protects a running task
// until its slice is used: milliseconds), and the event loop's latency grows by that much.
// At nice 19 the waking weft thread has about 70 times the TBB thread's weight and takes the
// core at once, while the arena still gets every cycle the event loop leaves (bench
// offload_latency). The cost: beside other busy processes of equal priority, compute() jobs get a
// small share of the CPU. A thread leaves the arena with its old priority put back; lowering a
// nice value needs CAP_SYS_NICE or RLIMIT_NICE, so without them a TBB thread that later works
// for another arena of the program stays at nice 19.
#include "compute_arena.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <weft/scheduler/compute.hpp>

#include "runtime_core.hpp"

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

// The nice value of a TBB thread while it works in the runtime's arena (the file comment).
constexpr int arena_nice = 19;

// Lowers the priority of every TBB worker thread while it is in the arena and puts it back when the
// thread leaves. TBB calls entry and exit on the thread itself, in pairs; the saved value is per
// thread, so no synchronization is needed.
class arena_priority final : public tbb::task_scheduler_observer {
 public:
  explicit arena_priority(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) {
    observe(true);
  }
  // Before the base's destructor: TBB must stop calling this object while it is still whole.
  ~arena_priority() override { observe(false); }
  arena_priority(const arena_priority&) = delete;
  arena_priority& operator=(const arena_priority&) = delete;

  void on_scheduler_entry(bool is_worker) override {
    if (!is_worker) return;  // weft threads never join; a thread of the program keeps its own
    saved& s = state();
    errno = 0;
    const int old = ::getpriority(PRIO_PROCESS, 0);  // this thread (Linux: 0 is the caller's tid)
    if (errno != 0 || old >= arena_nice) return;
    s.nice = old;
    s.lowered = ::setpriority(PRIO_PROCESS, 0, arena_nice) == 0;
  }
  void on_scheduler_exit(bool is_worker) override {
    if (!is_worker) return;
    saved& s = state();
    if (!s.lowered) return;
    s.lowered = false;
    (void)::setpriority(PRIO_PROCESS, 0, s.nice);  // EPERM without CAP_SYS_NICE: stays at 19
  }

 private:
  struct saved {
    int nice = 0;
    bool lowered = false;
  };
  static saved& state() {
    thread_local saved s;
    return s;
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
  compute_arena(runtime_core& core, std::size_t threads)
      : core_(core), threads_(threads == 0 ? allowed_cpus() : threads) {}

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
      priority_.emplace(*arena_);
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
      core_.report_composed([&] {
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
    wake(&core_, record->job->waiter);
    ended_.notify_all();
  }

  void link_locked(compute_record* record) noexcept {
    record->prev = nullptr;
    record->next = running_head_;
    if (running_head_ != nullptr) running_head_->prev = record;
    running_head_ = record;
    ++running_;
  }
  void unlink_locked(compute_record* record) noexcept {
    (record->prev != nullptr ? record->prev->next : running_head_) = record->next;
    if (record->next != nullptr) record->next->prev = record->prev;
    record->prev = record->next = nullptr;
    --running_;
  }

  runtime_core& core_;
  const std::size_t threads_;
  std::once_flag init_;
  std::optional<tbb::global_control> control_;
  std::optional<tbb::task_arena> arena_;
  std::optional<arena_priority> priority_;  // after arena_: stops observing before it goes
  mutable std::mutex mutex_;
  std::condition_variable ended_;
  compute_record* running_head_ = nullptr;
  std::size_t running_ = 0;
};

void compute_arena_deleter::operator()(compute_arena* arena) const noexcept { delete arena; }

compute_arena_ptr make_compute_arena(runtime_core& core, std::size_t threads) {
  return compute_arena_ptr(new compute_arena(core, threads));
}

void shutdown_compute_arena(compute_arena& arena, std::chrono::milliseconds report_after) {
  arena.shutdown(report_after);
}

std::size_t compute_running(const compute_arena& arena) noexcept { return arena.running(); }

// ---- the entry points of compute.hpp ----

void compute_prepare(compute_job* job) {
  runtime_core* rt = current_runtime_core();
  if (rt == nullptr) throw std::logic_error("weft::compute called outside a weft runtime");
  rt->compute->prepare(job);
}

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
