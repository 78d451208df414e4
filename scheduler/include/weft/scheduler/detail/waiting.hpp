// weft/scheduler/detail/waiting.hpp: the seam between the scheduler and the primitives above it.
//
// Everything a primitive (primitives/: mutex, queue, gather, timeout, ...) needs from the scheduler
// to make a task wait and to wake it again, and nothing else. A primitive includes this header,
// never task_header.hpp or another scheduler detail header (tests/architecture checks it; the
// allowed exceptions are listed there with their reasons). What it offers:
//
//   cancellable_wait        the base of every cancellable awaiter: begin() parks the task in a
//                           cancellable wait (publishing its cancel hook and what it waits on for
//                           runtime::dump, a wait_kind), finish() withdraws the hook and throws a
//                           cancellation (cancellable_wait.hpp has the contract)
//   current_root_awaiter    the spawned task the awaiting coroutine is part of, without suspending
//   current_runtime_core()  the runtime whose worker is calling (where to wake a waiter later)
//   wake(rt, handle)        makes a suspended waiter runnable again, from any thread
//   require_worker(what)    a wait outside a runtime is a std::logic_error naming `what`
//   request_cancel(task)    cancels a spawned task (gather, task groups)
//   the task accessors      below: what a combinator reads of a child it joins, and what a
//                           cancellation point or a timeout reads of its own task
//
// The task itself stays an opaque `task_header*` to the primitives: they name it and pass it
// back, and read it only through the functions of this file, so its layout can change without
// touching them.
#pragma once

#include <cstdint>
#include <exception>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

namespace weft::detail {

// The runtime that runs `task` (set at spawn; null for a task never spawned). Where a waiter that
// recorded its task, not its runtime, is woken.
inline runtime_core* runtime_of(const task_header* task) noexcept { return task->runtime(); }

// Consumes a cancellation pending on `task` (null: none): true means the caller, a cancellation
// point of that task running on its thread, throws cancellation_of(task) now.
inline bool take_cancellation(task_header* task) noexcept {
  return task != nullptr && task->take_pending_cancel();
}

// A child that finished (task_header::finished, acquire: its result is visible): the exception it
// ended with (empty if none) and whether that was a cancellation. Read by the combinator that
// joins it, after it saw the child finish.
inline const std::exception_ptr& failure_of(const task_header* child) noexcept {
  return child->exception();
}
inline bool ended_cancelled(const task_header* child) noexcept { return child->ended_cancelled(); }

// Puts a spawned task, not yet published to any queue, into a task group (task_group.hpp).
inline void join_group(task_header* child, group_link* group) noexcept { child->set_group(group); }

// For weft::timeout (timer_entry.hpp's lazy_timeout), on the task's own thread: the timeout of
// `task` whose timer is not armed yet (null: none), and how many cancel requests stand against it.
inline lazy_timeout*& unarmed_timeout_of(task_header* task) noexcept {
  return task->unarmed_timeout();
}
inline std::uint32_t cancel_requests_of(const task_header* task) noexcept {
  // Ordering: acquire, as the timeout's own read had it: pairs with the release half of a
  // canceller's acq_rel RMW of cancel_state, so a request counted here was made before.
  return task->cancel_word().load(std::memory_order_acquire) / task_header::cancel_request;
}

}  // namespace weft::detail
