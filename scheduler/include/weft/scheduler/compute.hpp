// weft/scheduler/compute.hpp: weft::compute, CPU-bound work on the runtime's oneTBB arena (the
// place of Python's ProcessPoolExecutor for work that can share memory).
//
//   double total = co_await weft::compute([&] {
//     return tbb::parallel_reduce(tbb::blocked_range<std::size_t>(0, data.size()), 0.0,
//         [&](const auto& r, double sum) { for (auto i = r.begin(); i != r.end(); ++i) sum +=
//         data[i];
//                                          return sum; },
//         std::plus<>());
//   });
//
// `fn()` runs inside a tbb::task_arena that the runtime owns (runtime_options::compute_threads
// threads), so it may use tbb::parallel_for, parallel_reduce, parallel_sort and flow graphs; the
// program that calls them includes oneTBB's headers and links TBB::tbb itself. The weft worker
// that awaited is free meanwhile: fn is enqueued into the arena (no weft thread ever waits inside
// TBB) and the task is woken from the TBB thread that finished it, through the same path as a
// timer's or a socket's wake-up; it resumes on a weft worker. The callable is stored in the
// awaiter, that is in the awaiting frame, so a lambda may capture the frame's locals by reference.
//
// Waiting is a cancellation point. Cancelling the task cancels the call's TBB group context:
// parallel algorithms inside fn stop at their next chunk, and a fn that never reaches one runs on.
// The task gets cancelled_error once fn has returned (fn may be using the frame until then), never
// before. An exception thrown by fn, or by a parallel body (oneTBB carries it out of the
// algorithm), reaches the task.
//
// Invariants (compute_arena.cpp argues them):
//   - the task is woken exactly once, by the TBB thread that ran fn, after fn returned and after
//     its result or exception was stored;
//   - the call's group context is cancelled only while fn may still run, under the arena's lock,
//     so a cancel never touches a context that is gone.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

namespace detail {

class runtime_core;

// A compute call: the part the library sees. It lives in the awaiter.
struct compute_job {
  using run_fn = void (*)(compute_job* self) noexcept;
  run_fn run = nullptr;            // runs fn on a TBB thread; stores its result or exception
  std::coroutine_handle<> waiter;  // set before the job is started
  void* record = nullptr;          // the library's part, from compute_prepare to compute_release
  void* owner = nullptr;           // the awaiter, for `run`
};

// Allocates the library's part of `job` on the calling worker's runtime (before the cancel hook
// is published, so that a cancel always finds it). Throws std::logic_error outside a runtime.
WEFT_API void compute_prepare(compute_job* job);
// Enqueues the job into the runtime's arena.
WEFT_API void compute_start(compute_job* job);
// For a cancellation: cancels the job's group context (or marks it so that it starts cancelled).
WEFT_API void compute_cancel(compute_job* job) noexcept;
// The awaiter lets go of the library's part (after the job ended, or if it never started).
WEFT_API void compute_release(compute_job* job) noexcept;

}  // namespace detail

// The awaiter of compute(). Holds the callable, the job and the result slot.
template <class F>
class [[nodiscard]] compute_awaiter : private detail::cancellable_wait {
  using result_type = std::invoke_result_t<F&>;
  using stored = std::conditional_t<
      std::is_void_v<result_type>, bool,
      std::conditional_t<std::is_reference_v<result_type>,
                         std::add_pointer_t<std::remove_reference_t<result_type>>, result_type>>;

 public:
  template <class G>
  explicit compute_awaiter(G&& fn) : fn_(std::forward<G>(fn)) {
    job_.run = &run_job;
    job_.owner = this;  // the awaiter does not move: it is a prvalue materialized in the frame
  }
  compute_awaiter(const compute_awaiter&) = delete;
  compute_awaiter& operator=(const compute_awaiter&) = delete;
  ~compute_awaiter() {
    abandon();  // a frame destroyed where it waits: no on_cancel may run past this point
    detail::compute_release(&job_);
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    detail::require_worker("weft::compute");
    detail::compute_prepare(&job_);
    on_cancel = &cancel_job;
    job_.waiter = self;
    if (begin(detail::root_of(self), detail::wait_kind::compute))
      return false;  // cancelled already: fn never runs
    try {
      detail::compute_start(&job_);
    } catch (...) {
      abandon();
      throw;
    }
    // Nothing here may touch *this any more: fn may end and resume the task on another worker.
    return true;
  }
  result_type await_resume() {
    finish();  // cancelled_error if a cancellation arrived (fn has returned by now)
    if (error_) std::rethrow_exception(error_);
    if (!value_) throw cancelled_error();  // fn was skipped: its context was cancelled first
    if constexpr (std::is_void_v<result_type>) {
      return;
    } else if constexpr (std::is_reference_v<result_type>) {
      return static_cast<result_type>(**value_);
    } else {
      return std::move(*value_);
    }
  }

 private:
  // On a TBB thread, inside the call's task group.
  static void run_job(detail::compute_job* job) noexcept {
    auto* self = static_cast<compute_awaiter*>(job->owner);
    try {
      if constexpr (std::is_void_v<result_type>) {
        std::invoke(self->fn_);
        self->value_.emplace(true);
      } else if constexpr (std::is_reference_v<result_type>) {
        self->value_.emplace(std::addressof(std::invoke(self->fn_)));
      } else {
        self->value_.emplace(std::invoke(self->fn_));
      }
    } catch (...) {
      self->error_ = std::current_exception();
    }
  }
  static void cancel_job(detail::cancel_hook* hook) noexcept {
    auto* self = static_cast<compute_awaiter*>(static_cast<detail::cancellable_wait*>(hook));
    detail::compute_cancel(&self->job_);  // no wake-up: the TBB thread wakes the task
  }

  detail::compute_job job_;
  F fn_;
  std::optional<stored> value_;
  std::exception_ptr error_;
};

// Runs `fn()` on the runtime's oneTBB arena; co_await its result. The callable is decay-copied
// into the awaiter (a lambda may capture the awaiting frame's locals by reference: the frame
// outlives the call).
template <class F>
compute_awaiter<std::decay_t<F>> compute(F&& fn) {
  return compute_awaiter<std::decay_t<F>>(std::forward<F>(fn));
}

}  // namespace weft
