// scheduler/visitors.hpp: tasks that moved between runtimes (weft::resume_on), and what each
// runtime's shutdown must know about them.
//
// A task belongs to the runtime that spawned it (its *home*): that runtime's registry lists it,
// and its completion is reported to that registry (registry::push_remote when it ends elsewhere).
// `co_await weft::resume_on(x)` moves the task's execution to runtime `x` (a pool or a
// frame_executor) without moving that ownership: on `x` it is a *visitor*. Two facts must then
// survive either runtime's shutdown:
//
//   - `x` must not be freed while a visitor can still be woken onto it (its task_header::runtime
//     points at `x`): `x` lists its visitors here, cancels them when it shuts down, and waits for
//     each to leave (end, or move on) before it stops its threads;
//   - the home must not be freed while one of its tasks runs elsewhere (the visitor's completion
//     touches the home's registry, and the home's sweep would destroy a frame that another runtime
//     runs): the home counts its tasks that are away, and waits for them as well.
//
// A visitor that outstays the grace is a program error the runtime cannot repair (destroying its
// frame would leave a dangling pointer in the other runtime's queues): shutdown reports it and
// aborts. The ordering rule that avoids it is documented in docs/embedding.md: destroy a
// frame_executor before the runtimes whose tasks visit it (declaring it after them does that).
//
// Locking: one mutex per runtime, taken only on a hop, on a visitor's completion and by shutdown;
// never while holding another lock of the scheduler, and nothing is called under it but
// request_cancel (which takes a primitive's lock to unlink a waiter, never this one).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <unordered_map>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

namespace weft::detail {

class visitors {
 public:
  // `task` (whose home is `home`) arrives. False if this runtime is shutting down (then nothing
  // changed). May throw std::bad_alloc (then nothing changed either).
  bool arrive(task_header* task, runtime_core* home) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    tasks_.emplace(task, home);
    // Ordering: relaxed under the lock; outstanding() reads it under the same lock or acquires
    // the release of landed().
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // The arriving side queued the task here (resume_on's wake returned) and touches this runtime
  // no more. Until then the runtime must stay alive even if the visitor already left again: the
  // wake reads its queues and idle state after the task became runnable.
  void landed() noexcept {
    // Ordering: release, as returned().
    in_flight_.fetch_sub(1, std::memory_order_release);
  }

  // `task` leaves (it moves on, or it ended here). Returns its home. The caller is the task itself.
  runtime_core* leave(task_header* task) noexcept {
    std::lock_guard lock(mutex_);
    const auto it = tasks_.find(task);
    runtime_core* home = it->second;
    tasks_.erase(it);
    return home;
  }

  // The home of visitor `task` (the caller is the task itself, so the entry cannot go meanwhile).
  runtime_core* home_of(task_header* task) noexcept {
    std::lock_guard lock(mutex_);
    return tasks_.find(task)->second;
  }

  // Diagnostics: calls f(task) for each visitor, under the lock.
  template <class F>
  void for_each(F f) {
    std::lock_guard lock(mutex_);
    for (const auto& entry : tasks_)
      f(entry.first);
  }

  // A task of this runtime leaves for another one. False once shutdown sealed this runtime (it is
  // about to stop its threads and sweep its registry: a task must not escape the sweep).
  bool depart() noexcept {
    std::lock_guard lock(mutex_);
    if (sealed_) return false;
    // Ordering: relaxed under the lock; seal() reads it under the same lock.
    away_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // A task of this runtime stopped being away (it came back, or it ended elsewhere). The caller
  // touches this runtime no more afterwards: once the count is zero its shutdown may free it.
  void returned() noexcept {
    // Ordering: release, so that everything the task did to this runtime (its completion pushed
    // onto the registry, a wake-up injected here) happens before shutdown's acquire load sees the
    // count drop.
    away_.fetch_sub(1, std::memory_order_release);
  }

  // Shutdown, phase 1: no visitor arrives from now on; every visitor present is cancelled.
  void close_and_cancel() noexcept {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (const auto& [task, home] : tasks_)
      request_cancel(task);
  }

  // Shutdown: visitors present plus tasks of this runtime away. Zero means the runtime may stop.
  [[nodiscard]] std::size_t outstanding() noexcept {
    std::lock_guard lock(mutex_);
    // Ordering: acquire pairs with returned()'s and landed()'s release.
    return tasks_.size() + away_.load(std::memory_order_acquire) +
           in_flight_.load(std::memory_order_acquire);
  }

  // Shutdown, before stopping the threads: no task departs from now on. Returns outstanding().
  std::size_t seal() noexcept {
    std::lock_guard lock(mutex_);
    sealed_ = true;
    // Ordering: acquire pairs with returned()'s and landed()'s release, as in outstanding().
    return tasks_.size() + away_.load(std::memory_order_acquire) +
           in_flight_.load(std::memory_order_acquire);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<task_header*, runtime_core*> tasks_;  // visitor -> its home
  bool closed_ = false;
  bool sealed_ = false;
  // This runtime's tasks that are on another runtime now. Incremented under mutex_ (depart),
  // decremented without it (returned).
  std::atomic<std::size_t> away_{0};
  // Arrivals whose wake-up into this runtime has not returned yet (arrive, then landed).
  std::atomic<std::size_t> in_flight_{0};
};

}  // namespace weft::detail
