// weft/scheduler/frame_executor.hpp: an executor that the host's loop drives, a slice per frame.
//
//   weft::runtime pool;                      // declared first: destroyed after the executor
//   weft::frame_executor frame;              // runs tasks on this (the host's) thread only
//   frame.spawn(load_level()).detach();      // load_level: co_await resume_on(pool) for heavy
//                                            // work, co_await resume_on(frame) to come back
//   while (running) {
//     poll_input();
//     frame.run_for(2ms);                    // async work gets at most ~2 ms of this frame
//     simulate(); render();
//   }
//
// A frame_executor is a runtime of its own whose single worker has no thread: the host thread runs
// it inside run_for() and run_until_idle(), and nothing of it runs on the host thread outside those
// calls (Unity's main-thread context, a UI thread, asyncio's loop driven step by step). Tasks
// spawned on it run only there; every wake-up (primitives, timers, I/O, join handles) from any
// thread queues the task for the next call. Its poller thread keeps time and watches descriptors,
// so sleep, timeouts and io_source work on it as on a pool.
//
// `co_await weft::resume_on(x)` moves the calling task to `x` (a frame_executor or a runtime) and
// continues it there: a task loads on the pool and applies the result on the frame, or the other
// way round. The task still belongs to the runtime that spawned it (its join_handle, its listing);
// it is a visitor where it runs. Shutdown is safe in either order as long as the visitors leave
// when cancelled; a visitor that stays past the grace aborts the process (docs/embedding.md). The
// simple rule: declare the frame_executor after the runtimes whose tasks visit it.
//
// A resumption that runs longer than frame_executor_options::overrun_report is reported through
// the log hook with the task's name (when the resumed coroutine is the task's own) and its time,
// as debug mode reports a task that blocks a worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/runtime.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct frame_executor_options {
  // The poller thread is named "<name>-io" (Linux keeps 15 characters).
  std::string name = "weft-frame";
  // A single resumption longer than this is reported through `log` (name, time, and how far it
  // ran past run_for's budget). Zero reports every resumption.
  std::chrono::microseconds overrun_report{1000};
  // How long the destructor runs the cancelled tasks before it destroys those left (see
  // runtime_options::shutdown_timeout).
  std::chrono::milliseconds shutdown_timeout{5000};
  // Where reports go (any thread). Default: a line on stderr.
  std::function<void(std::string_view)> log;
  // A trace of the executor's runs (runtime_options::trace_file; docs/diagnostics.md): its run
  // slices on one track, "<name> (host thread)", whichever thread drives it; written when the
  // executor is destroyed. WEFT_TRACE=path applies here too (numbered after the first runtime).
  std::string trace_file;
};

// What one run_for / run_until_idle call did.
struct frame_result {
  std::size_t resumed = 0;              // resumptions run
  std::chrono::nanoseconds elapsed{0};  // time spent in the call
  std::chrono::nanoseconds overrun{0};  // how far the call ran past its budget (0 within it)
  bool idle = false;                    // it returned because nothing was ready
};

namespace detail {
// Moves the task whose coroutine `waiter` is suspended to `target` and queues it there (resume_on).
// Throws std::logic_error outside a spawned task and weft::runtime_stopped when `target` shuts down
// (the task then stays where it is).
WEFT_API void resume_on_runtime(runtime_core* target, task_header* root,
                                std::coroutine_handle<> waiter);

struct runtime_access {
  static runtime_core* core(const runtime& rt) noexcept { return rt.core_; }
};
}  // namespace detail

// `co_await resume_on(x)`: continues the calling task on `x`, a frame_executor or a runtime (see
// the file comment). Does nothing when the task runs on `x` already. Not a cancellation point, so
// a cancelled task can still go back where its cleanup must run.
class [[nodiscard]] resume_on_awaiter {
 public:
  explicit resume_on_awaiter(detail::runtime_core* target) noexcept : target_(target) {}
  [[nodiscard]] bool await_ready() const noexcept {
    return detail::current_runtime_core() == target_;
  }
  template <class Promise>
  void await_suspend(std::coroutine_handle<Promise> self) {
    detail::resume_on_runtime(target_, detail::root_of(self), self);
  }
  void await_resume() const noexcept {}

 private:
  detail::runtime_core* target_;
};

class WEFT_API frame_executor {
 public:
  frame_executor();
  explicit frame_executor(frame_executor_options options);
  // Cancels the executor's tasks (and visitors from other runtimes) and runs them on the calling
  // thread, which must be the host (not a worker), for up to the grace; then destroys what is left
  // where it waits, as runtime::shutdown does.
  ~frame_executor();
  frame_executor(const frame_executor&) = delete;
  frame_executor& operator=(const frame_executor&) = delete;

  // Starts `work` on the executor from any thread (as runtime::spawn). It first runs in the next
  // run_for/run_until_idle call.
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  auto spawn(W&& work, Args&&... args) {
    return detail::spawn_on(core_,
                            detail::make_task(std::forward<W>(work), std::forward<Args>(args)...));
  }
  template <class T>
  join_handle<T> spawn_named(const char* name, task<T> work) {
    return spawn(detail::named(name, std::move(work)));
  }

  // Runs ready tasks on the calling thread until `budget` is spent (the clock is read after every
  // resumption) or nothing is ready. A resumption is never interrupted, so the call can overrun
  // by the length of the last one (frame_result::overrun). Throws std::logic_error when called on
  // a worker thread (of any runtime, this one's included: re-entrantly from one of its tasks) or
  // while another thread drives this executor.
  frame_result run_for(std::chrono::nanoseconds budget);
  // Runs until nothing is ready (timers and I/O that are not due yet do not count). Tasks that keep
  // each other ready (two tasks waking each other, yield_now in a loop) keep it running: prefer
  // run_for in a frame loop.
  frame_result run_until_idle();
  // Runs `work` on the executor, driving it from the calling thread (with short sleeps while
  // nothing is ready) until it finishes; returns its value or rethrows its exception.
  template <class T>
  T block_on(task<T> work) {
    auto handle = spawn(std::move(work));
    while (!handle.done()) {
      if (run_until_idle().resumed == 0 && !handle.done()) wait_for_work();
    }
    return handle.take_result();
  }

  // Tasks ready to run now (the host thread only: a snapshot of its queues).
  [[nodiscard]] std::size_t pending() const noexcept;
  [[nodiscard]] runtime_stats stats() const noexcept;
  // Every live task spawned on this executor, with its state and await chain (runtime::dump; any
  // thread). A task of another runtime visiting this executor (resume_on) is listed by its home
  // runtime's dump, as a task of that runtime.
  [[nodiscard]] runtime_dump dump() const;

 private:
  friend resume_on_awaiter resume_on(frame_executor& executor) noexcept;
  void wait_for_work() const;
  frame_result drive(std::chrono::steady_clock::time_point deadline);
  void report_overrun(void* resumed, std::chrono::nanoseconds ran,
                      std::chrono::nanoseconds past_budget) const noexcept;

  detail::runtime_core* core_;
  std::chrono::nanoseconds overrun_report_;
  // A thread drives the executor now (run_for, run_until_idle): a second one is refused.
  std::atomic<bool> driving_{false};
};

inline resume_on_awaiter resume_on(frame_executor& executor) noexcept {
  return resume_on_awaiter(executor.core_);
}
inline resume_on_awaiter resume_on(runtime& rt) noexcept {
  return resume_on_awaiter(detail::runtime_access::core(rt));
}

}  // namespace weft
