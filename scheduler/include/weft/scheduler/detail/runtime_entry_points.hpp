// weft/scheduler/detail/runtime_entry_points.hpp: the functions of libweft that inline code calls.
//
// weft's headers are mostly templates and inline functions (a task's promise, join_handle, the
// awaiters of the primitives); where they must reach the runtime (hand it a task, wake a waiter,
// cancel, block a thread, ask which worker is calling) they call one of the out-of-line functions
// declared here, each exported from libweft and defined in the scheduler's .cpp files (named at
// each declaration). This file is that list and nothing else: the layout of a task and the
// protocols on its fields stay in task_header.hpp, and these declarations need only the names of
// the types they pass (every one is passed by pointer), so this header includes no layout.
//
// Why a file of their own: these are the calls that cross from the user's translation unit into
// the shared library, so they are libweft's ABI surface beside the public classes, and they are
// exactly what a test that links no libweft must define itself (tests/model stubs the few its
// headers reach: wake, arm_lazy_timeout, arm_fork_scope, take_cancel_message_of). Named for the
// runtime they enter rather than for the task: half of them take no task at all.
//
// task_header.hpp includes this header, because three of its inline members take their slow path
// here (take_cancel_message_of, arm_lazy_timeout, arm_fork_scope); a header that calls any of the
// others includes this one by name.
#pragma once

#include <coroutine>
#include <cstdint>
#include <string_view>

#include <weft/scheduler/export.hpp>

namespace weft::detail {

class runtime_core;
class task_header;
class worker;
struct cancel_message;

// The worker running on the calling thread, or null (scheduler/worker.hpp). Visible here so that
// the checks "is this a worker?" on every await (require_worker, fork_join) are one load inline,
// not a call into libweft; the worker's type stays opaque. initial-exec: a fixed offset from the
// thread pointer (libweft needs static TLS for its own already).
extern WEFT_API
    __attribute__((tls_model("initial-exec"))) constinit thread_local worker* this_worker;

// The slow halves of task_header's inline members (take_cancel_message, take_pending_cancel).

// Takes `task`'s entry out of the message table (cancel_message.cpp) and clears
// cancel_has_message; null if it has none. Any thread; takes the table's lock.
WEFT_API cancel_message* take_cancel_message_of(task_header* task) noexcept;

// Arms `task->timeout_to_arm` (see there) and clears it; a deadline that has passed fires at once,
// on the calling thread. Called by the task itself, at a cancellation point or when a timeout
// nests inside the pending one. Defined in timers.cpp.
WEFT_API void arm_lazy_timeout(task_header* task) noexcept;

// A fork_join child reached a cancellation point: makes sure the cancellation of the task that
// forks it (and of that task's own forker, up the chain) reaches it from now on, by publishing the
// forker's cancel hook if nobody did yet (fork_join.cpp, "the lazy scope"). Called by the child.
WEFT_API void arm_fork_scope(task_header* child) noexcept;

// The life of a spawned task (task_lifecycle.cpp; the message overload in cancel_message.cpp).

// Hands a new spawned task to `rt` (or, if null, to the runtime whose worker is calling). Throws
// std::logic_error outside a runtime and weft::runtime_stopped after shutdown began; on throw the
// caller still owns the frame. `eager`: when the caller is a worker of that runtime, the task runs
// at once on the caller's stack until it first suspends (or finishes), before spawn_root returns
// (Python 3.12's eager tasks); elsewhere it is queued as usual.
WEFT_API void spawn_root(runtime_core* rt, task_header* task, bool eager = false);

// Called from a spawned task's final suspend point: publishes completion, wakes the waiter, and
// destroys the frame if no handle remains. Returns the coroutine to transfer to.
WEFT_API std::coroutine_handle<> complete_root(task_header* task) noexcept;

// The last join_handle of `task` lets go (drop or detach). `result_taken`: the handle took the
// result; if it did not and the task failed, the exception is reported as never retrieved.
// `explicit_detach`: detach() rather than a dropped handle (debug mode reports a handle dropped
// while its task still runs).
WEFT_API void release_root(task_header* task, bool result_taken,
                           bool explicit_detach = false) noexcept;

// Requests cancellation of `task` from any thread: marks it, and if it is suspended in a
// cancellable wait, runs that wait's on_cancel. Idempotent until the cancellation is delivered.
WEFT_API void request_cancel(task_header* task) noexcept;

// request_cancel with a message (cancel("reason")): the message is published in the message table
// (cancel_message.cpp) before the request, so the cancellation point that delivers this request
// throws it (unless a later message replaced it first: the latest wins). Nothing happens to a task
// that finished. std::bad_alloc (and no cancellation) if the message cannot be made.
WEFT_API void request_cancel(task_header* task, std::string_view message);

// Takes back one request made by request_cancel (timeouts); returns the requests still standing.
WEFT_API std::uint32_t withdraw_cancel_request(task_header* task) noexcept;

// Makes `waiter` runnable again on `task`'s runtime, from any thread (the resumption path of
// cancellation and of wake-ups that come from outside the waiting primitive).
WEFT_API void wake(runtime_core* rt, std::coroutine_handle<> waiter) noexcept;

// Blocks the calling (non-worker) thread until `task` finished or was abandoned.
WEFT_API void block_until_finished(task_header* task);

// The calling thread and its worker (worker.cpp; report_to_log in runtime.cpp).

// Throws std::logic_error naming `what` if the calling thread is a worker of any weft runtime.
WEFT_API void require_not_on_worker(const char* what);

// Throws std::logic_error naming `what` unless the calling thread is a worker of a runtime.
[[noreturn]] WEFT_API void throw_outside_runtime(const char* what);
inline void require_worker(const char* what) {
  if (this_worker == nullptr) [[unlikely]]
    throw_outside_runtime(what);
}

// The runtime whose worker thread is calling, or null.
WEFT_API runtime_core* current_runtime_core() noexcept;

// Reports `message` through the log hook of `rt` (runtime_options::log; a line on stderr without
// one, or when `rt` is null). For the layers above, which report conditions nobody else sees (a
// listener out of descriptors). Never throws.
WEFT_API void report_to_log(runtime_core* rt, std::string_view message) noexcept;

// Queues `waiter` behind the tasks that are ready now on this worker (yield_now).
// Requires: the calling thread is a worker (budget_exhausted() returned true, or the caller
// checked).
WEFT_API void schedule_yield(std::coroutine_handle<> waiter) noexcept;

// Cooperative budget: returns true when the running task has completed so many operations without
// suspending that it should yield now, so one busy task cannot starve the others.
WEFT_API bool budget_exhausted() noexcept;

}  // namespace weft::detail
