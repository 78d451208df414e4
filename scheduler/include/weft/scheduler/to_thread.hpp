// weft/scheduler/to_thread.hpp: weft::to_thread, asyncio.to_thread: a blocking call on a thread of
// the runtime's blocking pool, awaited by a task that holds no worker meanwhile.
//
//   std::string text = co_await weft::to_thread(read_whole_file, path);   // blocking read
//   co_await weft::to_thread([](std::stop_token stop, int n) {            // may stop early
//     for (int i = 0; i < n && !stop.stop_requested(); ++i) step(i);
//   }, 1000);
//
// `fn(args...)` runs on a thread of the blocking pool; the awaiting task gets its result or its
// exception. The callable and copies of the arguments are stored with the call (spawn's rule: a
// reference argument is copied; pass std::ref to share) and live until the call has ended, even
// when the awaiting task has gone on. The pool is elastic: threads start on demand up to
// runtime_options::blocking_threads and an idle one exits after blocking_keep_alive. Behind a
// full pool, calls queue up to runtime_options::blocking_queue; a submit beyond that waits (its
// task stays suspended outside the queue) until a slot frees: back-pressure, never unbounded growth
// of the queue.
//
// Waiting is a cancellation point, with asyncio's rule:
//   - a call that has not started is taken out of the queue and never runs; the task gets
//     cancelled_error at once;
//   - a call that has started runs to its end on its thread (a thread cannot be interrupted), while
//     the task gets cancelled_error at once; the result is dropped;
//   - a callable whose first parameter is a std::stop_token gets one, and cancellation requests it,
//     so a long loop can stop early.
// Destroying the runtime waits for running calls up to runtime_options::blocking_shutdown_timeout
// and names each one still running through the log hook; calls not started never run.
//
// Invariants (blocking_pool.cpp argues them):
//   - exactly one of the pool thread (completion) and the canceller wakes the task, decided under
//     the pool's lock from the call's state; the task is woken exactly once;
//   - the call object is freed by whoever drops the last of its two references (the awaiter's and,
//     from submit to the end of the call or its removal from the queue, the pool's), so a running
//     call never outlives its callable and a detached awaiter never reads a freed call.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

namespace detail {

class runtime_core;

// A call handed to the blocking pool: the part the library sees. The derived blocking_call_impl
// holds the callable, the arguments and the result slot.
struct blocking_call {
  using run_fn = void (*)(blocking_call* self) noexcept;
  using free_fn = void (*)(blocking_call* self) noexcept;
  run_fn run = nullptr;                  // invokes the callable; stores its result or exception
  free_fn free = nullptr;                // deletes the derived object
  const std::type_info* what = nullptr;  // the callable's type, for shutdown reports
  std::stop_source* stop = nullptr;      // non-null if the callable takes a std::stop_token
  std::coroutine_handle<> waiter;        // set before the call is submitted

  // The pool's part (blocking_pool.cpp). `refs` counts the awaiter and, while it holds the call,
  // the pool; the other fields are guarded by the pool's lock.
  std::atomic<int> refs{1};
  // True while the awaiter must tell the pool when it lets go (the call is queued, held back, or
  // running for a task that still waits). Written under the pool's lock with release; read by the
  // awaiter's release with acquire. False once the call is removed, detached or done, so an
  // awaiter that outlives its runtime (a frame kept by a join_handle) never touches the pool.
  std::atomic<bool> in_pool{false};
  unsigned char state = 0;
  blocking_call* prev = nullptr;
  blocking_call* next = nullptr;
  void* pool = nullptr;
  long long started_ns = 0;  // steady_clock, when a thread took the call
};

enum class blocking_submit_result : unsigned char {
  submitted,  // the call is queued or running; the task will be woken once
  cancelled,  // a cancellation ran first (or the pool is closed): the call never runs
};

// Hands `call` to the blocking pool of the calling worker's runtime.
WEFT_API blocking_submit_result blocking_submit(blocking_call* call);
// For a cancellation: removes a queued call (it never runs) or detaches a running one (its stop
// token is requested). True if the caller must wake the waiter (nobody else will).
WEFT_API bool blocking_cancel(runtime_core* rt, blocking_call* call) noexcept;
// The awaiter lets go of `call` (it is freed now or when its thread finishes it). A call still
// queued is removed first.
WEFT_API void blocking_release(blocking_call* call) noexcept;

template <class R>
struct blocking_call_result : blocking_call {
  using stored =
      std::conditional_t<std::is_reference_v<R>, std::add_pointer_t<std::remove_reference_t<R>>, R>;
  std::optional<stored> value;
  std::exception_ptr error;

  // Moves the result (or the exception) out: whichever owner frees the call later (possibly the
  // pool thread) then destroys nothing the awaiting task still uses.
  R take() {
    if (error) std::rethrow_exception(std::exchange(error, nullptr));
    if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(**value);
    } else {
      return std::move(*value);
    }
  }
};

template <>
struct blocking_call_result<void> : blocking_call {
  bool ran = false;
  std::exception_ptr error;
  void take() {
    if (error) std::rethrow_exception(std::exchange(error, nullptr));
  }
};

template <class F, class... Args>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F&&, std::stop_token, Args&&...>;

template <class F, class... Args>
struct to_thread_result {
  using type = std::invoke_result_t<F&&, Args&&...>;
};
template <class F, class... Args>
requires takes_stop_token_v<F, Args...>
struct to_thread_result<F, Args...> {
  using type = std::invoke_result_t<F&&, std::stop_token, Args&&...>;
};

template <class R, class F, class... Args>
struct blocking_call_impl final : blocking_call_result<R> {
  static constexpr bool with_stop = takes_stop_token_v<F, Args...>;

  template <class G, class... A>
  explicit blocking_call_impl(G&& g, A&&... a)
      : fn(std::forward<G>(g)), args(std::forward<A>(a)...) {
    this->run = &run_call;
    this->free = &free_call;
    this->what = &typeid(F);
    if constexpr (with_stop) this->stop = &source;
  }

  static void run_call(blocking_call* base) noexcept {
    auto* self = static_cast<blocking_call_impl*>(base);
    try {
      self->invoke();
    } catch (...) {
      self->error = std::current_exception();
    }
  }
  static void free_call(blocking_call* base) noexcept {
    delete static_cast<blocking_call_impl*>(base);
  }

  void invoke() {
    auto call = [this](auto&&... a) -> R {
      if constexpr (with_stop) {
        return std::invoke(std::move(fn), source.get_token(), std::move(a)...);
      } else {
        return std::invoke(std::move(fn), std::move(a)...);
      }
    };
    if constexpr (std::is_void_v<R>) {
      std::apply(call, std::move(args));
      this->ran = true;
    } else if constexpr (std::is_reference_v<R>) {
      this->value.emplace(std::addressof(std::apply(call, std::move(args))));
    } else {
      this->value.emplace(std::apply(call, std::move(args)));
    }
  }

  F fn;
  std::tuple<Args...> args;
  // Only callables that take a stop token pay for its shared state.
  [[no_unique_address]] std::conditional_t<with_stop, std::stop_source, std::monostate> source;
};

}  // namespace detail

// The awaiter of to_thread(). Owns one reference to its call; the pool owns the other while it
// holds the call.
template <class R>
class [[nodiscard]] to_thread_awaiter : private detail::cancellable_wait {
 public:
  explicit to_thread_awaiter(detail::blocking_call_result<R>* call) noexcept : call_(call) {}
  to_thread_awaiter(const to_thread_awaiter&) = delete;
  to_thread_awaiter& operator=(const to_thread_awaiter&) = delete;
  ~to_thread_awaiter() {
    // A frame destroyed where it waits (runtime shutdown): take the hook back first, so that no
    // on_cancel runs against the call after it was released.
    abandon();
    if (call_ != nullptr) detail::blocking_release(std::exchange(call_, nullptr));
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    detail::require_worker("weft::to_thread");
    on_cancel = &cancel_call;
    call_->waiter = self;  // before begin() publishes the hook and before the pool can see it
    if (begin(detail::root_of(self), detail::wait_kind::to_thread))
      return false;  // cancelled before submitting: never runs
    detail::blocking_submit_result submitted;
    try {
      submitted = detail::blocking_submit(call_);
    } catch (...) {
      abandon();
      throw;
    }
    // Nothing here may touch *this once submitted: the call may end and resume the task on
    // another worker at once. A cancel racing with the submit is settled under the pool's lock
    // (the call's state): either the submit refuses, or the cancel sees the call queued.
    if (submitted == detail::blocking_submit_result::cancelled) {
      mark_cancelled();
      return false;
    }
    return true;
  }
  R await_resume() {
    finish();  // throws cancelled_error if the wait was cancelled or a cancellation is pending
    return call_->take();
  }

 private:
  static void cancel_call(detail::cancel_hook* hook) noexcept {
    auto* self = static_cast<to_thread_awaiter*>(static_cast<detail::cancellable_wait*>(hook));
    if (detail::blocking_cancel(self->root()->runtime(), self->call_)) {
      self->mark_cancelled();
      detail::wake(self->root()->runtime(), self->call_->waiter);
    }
  }

  detail::blocking_call_result<R>* call_;
};

// Runs `fn(args...)` (or `fn(stop_token, args...)`) on the runtime's blocking pool; co_await the
// result. The callable and the arguments are decay-copied into the call.
template <class F, class... Args>
auto to_thread(F&& fn, Args&&... args) {
  using R = typename detail::to_thread_result<std::decay_t<F>, std::decay_t<Args>...>::type;
  using impl = detail::blocking_call_impl<R, std::decay_t<F>, std::decay_t<Args>...>;
  return to_thread_awaiter<R>(new impl(std::forward<F>(fn), std::forward<Args>(args)...));
}

}  // namespace weft
