// scheduler/frame_executor.cpp: weft::frame_executor (a runtime_core whose one worker the host
// thread drives) and weft::resume_on (moving a task between runtimes). The design and its
// invariants are in docs/architecture.md, "The frame executor"; visitors.hpp has the shutdown
// rules for tasks that move.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/frame_executor.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include <weft/scheduler/errors.hpp>

#include "dump.hpp"
#include "runtime_core.hpp"

namespace weft {

namespace detail {

namespace {

using steady = std::chrono::steady_clock;

// The hosted worker is the calling thread's current worker for the scope's duration, so that
// spawn, wake, timers and I/O see the executor as "the runtime of the calling worker".
class hosted_scope {
 public:
  explicit hosted_scope(worker& w) noexcept : previous_(worker::exchange_current(&w)) {}
  ~hosted_scope() { worker::exchange_current(previous_); }
  hosted_scope(const hosted_scope&) = delete;
  hosted_scope& operator=(const hosted_scope&) = delete;

 private:
  worker* previous_;
};

runtime_options core_options(frame_executor_options& options) {
  runtime_options out;
  out.thread_name = std::move(options.name);
  out.shutdown_timeout = options.shutdown_timeout;
  out.log = std::move(options.log);
  out.trace_file = std::move(options.trace_file);
  return out;
}

// One resumption on the host thread, as a worker's run (worker::run_batch): a slice on the
// executor's one track when tracing. Its end is stamped by the next run's begin or by
// host_returns when the drive ends (trace.hpp), so a trace never stretches a slice over the
// host's own work between two frames.
inline void run_traced(runtime_core& core, worker& w, void* task) {
  if (core.trace != nullptr) [[unlikely]]
    core.trace->run_begin(0, task);
  w.run_hosted_task(task);
  if (core.trace != nullptr) [[unlikely]]
    core.trace->run_end(0);
}

}  // namespace

void drive_hosted_for_shutdown(runtime_core& core) noexcept {
  // The destructor's thread (the host) runs the cancelled tasks a slice at a time; shutdown's
  // loop calls this between its checks of the registry.
  worker& w = *core.workers[0];
  hosted_scope scope(w);
  const auto until = steady::now() + std::chrono::milliseconds(1);
  for (std::uint32_t n = 0;; ++n) {
    void* task = nullptr;
    try {
      task = w.next_hosted_task();
    } catch (...) {
      return;  // out of memory moving the LIFO slot: the next slice tries again
    }
    if (task == nullptr) break;
    run_traced(core, w, task);
    if ((n & 15) == 15 && steady::now() >= until) break;
  }
  if (core.trace != nullptr) [[unlikely]]
    core.trace->host_returns(0);
}

void resume_on_runtime(runtime_core* target, task_header* root, std::coroutine_handle<> waiter) {
  runtime_core* here = current_runtime_core();
  if (here == nullptr || root == nullptr) {
    throw std::logic_error("weft::resume_on used outside a spawned weft task");
  }
  // A fork_join child must end where its caller joins it; its completion does not pass through
  // the visitors' bookkeeping.
  if (root->fork_child()) {
    throw std::logic_error(
        "weft::resume_on inside a weft::fork_join child: spawn the work that must move instead");
  }
  // The task runs on `here` (await_ready said it is not on `target`). Its home is where it was
  // spawned; a visitor's home is recorded by the runtime it visits.
  runtime_core* home = root->visiting() ? here->visitors.home_of(root) : here;
  const bool back_home = target == home;
  if (!back_home && !target->visitors.arrive(root, home)) {
    throw runtime_stopped("weft::resume_on: the target runtime is shutting down");
  }
  if (!root->visiting()) {
    // Leaving home: the home counts it, unless its shutdown already sealed it (the task must stay
    // to be swept with the others).
    if (!home->visitors.depart()) {
      (void)target->visitors.leave(root);
      target->visitors.landed();
      throw runtime_stopped("weft::resume_on: the task's runtime is shutting down");
    }
  } else {
    (void)here->visitors.leave(root);
  }
  root->set_visiting(!back_home);
  // The write of task_header::runtime. The task is suspended (this is its await_suspend) and is
  // queued nowhere yet, so nothing resumes it concurrently. Who reads the field: the task itself
  // (program order, and the wake below publishes the write to whoever runs it next); a canceller
  // through a cancel hook (none is published: resume_on is not a cancellable wait, and the next
  // wait publishes its hook with a seq_cst store after this write, which the canceller's exchange
  // synchronizes with); the completion of the task (its own thread); and release_root, which a
  // handle holder on any thread may run while the task is alive: it reads through the same
  // atomic_ref, and either value names a runtime kept alive by the visitor rules.
  root->runtime_ref().store(target, std::memory_order_relaxed);
  wake(target, waiter);  // the task may run, move on or end on `target` from here on
  // The target stays alive through the wake above: as a visitor's destination it counts this
  // arrival until landed(); as the home, the task counts as away until returned() (visitors.hpp).
  if (back_home) {
    home->visitors.returned();
  } else {
    target->visitors.landed();
  }
}

}  // namespace detail

frame_executor::frame_executor() : frame_executor(frame_executor_options{}) {}

frame_executor::frame_executor(frame_executor_options options)
    : overrun_report_(options.overrun_report) {
  core_ = new detail::runtime_core(detail::core_options(options), detail::runtime_core::hosted_t{});
  try {
    core_->start();
  } catch (...) {
    delete core_;
    throw;
  }
}

frame_executor::~frame_executor() {
  if (detail::current_worker() != nullptr) {
    core_->report(
        "weft: a frame_executor was destroyed on a worker thread (or from one of its own tasks); "
        "it must be destroyed on its host thread; aborting");
    std::abort();
  }
  delete core_;  // shutdown: cancels, drives the tasks on this thread (drive_hosted_for_shutdown)
}

frame_result frame_executor::run_for(std::chrono::nanoseconds budget) {
  return drive(detail::steady::now() + budget);
}

frame_result frame_executor::run_until_idle() { return drive(detail::steady::time_point::max()); }

frame_result frame_executor::drive(std::chrono::steady_clock::time_point deadline) {
  using detail::steady;
  if (detail::current_worker() != nullptr) {
    throw std::logic_error(
        "weft::frame_executor::run_for/run_until_idle called on a worker thread or from a task "
        "of the executor itself; call it from the host thread, outside any task");
  }
  // Ordering: acquire pairs with the release below, so that a host thread that takes over from
  // another sees everything the previous driver did to the worker's owner-only state.
  if (driving_.exchange(true, std::memory_order_acquire)) {
    throw std::logic_error("weft::frame_executor: driven by two threads at once");
  }
  struct release_driving {
    std::atomic<bool>& flag;
    // Ordering: release, paired with the next driver's acquire exchange above.
    ~release_driving() { flag.store(false, std::memory_order_release); }
  } release{driving_};
  detail::worker& w = *core_->workers[0];
  detail::hosted_scope scope(w);
  frame_result result;
  const auto start = steady::now();
  auto last = start;
  while (last < deadline) {
    void* task = w.next_hosted_task();
    if (task == nullptr) {
      result.idle = true;
      break;
    }
    detail::run_traced(*core_, w, task);
    const auto now = steady::now();
    ++result.resumed;
    if (now - last > overrun_report_) [[unlikely]] {
      report_overrun(task, now - last, now > deadline ? now - deadline : steady::duration::zero());
    }
    last = now;
  }
  if (core_->trace != nullptr) [[unlikely]]
    core_->trace->host_returns(0);
  result.elapsed = last - start;
  if (last > deadline) result.overrun = last - deadline;
  return result;
}

void frame_executor::report_overrun(void* resumed, std::chrono::nanoseconds ran,
                                    std::chrono::nanoseconds past_budget) const noexcept {
  // The name, when the resumed coroutine is a task's own (outermost) coroutine: looked up among
  // the executor's tasks and visitors by frame address, without dereferencing `resumed` (it may
  // have ended). The host thread owns shard 0; the foreign shard and the visitors take their lock.
  const char* name = nullptr;
  auto match = [&](detail::task_header* t) {
    if (t->frame().address() == resumed && t->name() != nullptr) name = t->name();
  };
  for (detail::task_header& t : core_->registry.worker_shard(0).tasks)
    match(&t);
  detail::registry_shard& foreign = core_->registry.foreign_shard();
  foreign.lock.lock();
  for (detail::task_header& t : foreign.tasks)
    match(&t);
  foreign.lock.unlock();
  core_->visitors.for_each(match);
  const auto us = [](std::chrono::nanoseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  core_->report_composed([&] {
    std::string message = "weft: frame executor '" + core_->options.thread_name + "': task" +
                          (name != nullptr ? std::string(" '") + name + "'" : std::string()) +
                          " ran " + us(ran) + " us in one resumption";
    if (past_budget > std::chrono::nanoseconds::zero()) {
      message += ", " + us(past_budget) + " us past the frame's budget";
    }
    return message + " (split the work with yield_now, or move it to the pool with resume_on)";
  });
}

std::size_t frame_executor::pending() const noexcept { return core_->workers[0]->hosted_ready(); }

runtime_stats frame_executor::stats() const noexcept { return core_->stats(); }

runtime_dump frame_executor::dump() const { return detail::dump_runtime(*core_); }

void frame_executor::wait_for_work() const {
  // block_on with nothing ready: a timer or another thread will make something ready; look again
  // shortly (the executor has no thread to park, and the poller wakes nobody here).
  std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace weft
