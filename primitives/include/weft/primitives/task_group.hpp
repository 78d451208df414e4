// weft/primitives/task_group.hpp: weft::task_group, Python's asyncio.TaskGroup (structured
// concurrency).
//
//   co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
//     auto a = tg.spawn(fetch("url1"));
//     auto b = tg.spawn(fetch("url2"));
//     co_return;
//   });   // every child has finished here, or an exception_group was thrown
//
// Children spawned into a group are all finished before the group's scope ends. The first child
// to fail cancels the others (policy collect_all lets them run and collects every failure); when
// all are done, the failures are thrown together as a weft::exception_group, in the order they
// happened. A child that ends cancelled is not a failure. Cancelling the task that
// awaits the group (join or with_task_group) cancels every child; the group then waits for them
// and throws cancelled_error, or, if children had failed, the exception_group with the
// cancellation left pending, so that the owner's next cancellation point throws cancelled_error
// (asyncio re-cancels the parent task when its TaskGroup raises an ExceptionGroup: a
// cancellation is never lost to a child's failure).
//
// Forgetting to join cannot go unnoticed: with_task_group joins for you (and runs the body as a
// child of the group, so a failing child cancels the body too, as in Python). A task_group object
// destroyed while children still run reports it and calls std::terminate, since silently
// detaching them would let them outlive the data they borrow.
//
// The group owns its children: spawn returns a group_handle, a view that can take the child's
// result once the group has joined. Handles, results and exceptions live as long as the group.
// A child whose result nobody wants (a server's connection handler, asyncio's
// `tg.create_task(handle(conn))` with the task ignored) is started with start_soon instead: it
// returns nothing, and the group frees the child's frame soon after it ends, so a group that lives
// as long as a server holds its running children and a bounded number of ended ones, not every
// child it ever had:
//
//   co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
//     for (;;) tg.start_soon(handle, co_await listener.accept());
//   });
#pragma once

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/primitives/exception_group.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

// A child of a task_group: a view that reads the child's state and, once the group has joined,
// takes its result. Valid as long as the group.
template <class T>
class group_handle {
 public:
  explicit group_handle(detail::task_promise<T>* promise) noexcept : promise_(promise) {}

  [[nodiscard]] bool done() const noexcept { return promise_->finished(); }
  [[nodiscard]] bool cancelled() const noexcept { return done() && promise_->ended_cancelled(); }
  void cancel() const noexcept { detail::request_cancel(promise_); }
  // With a reason (Task.cancel(msg)), as join_handle::cancel(message).
  void cancel(std::string_view message) const { detail::request_cancel(promise_, message); }

  // The child's value (moved out) or its exception rethrown. Requires: done().
  decltype(auto) result() {
    if (!done()) throw std::logic_error("weft::group_handle::result: the task has not finished");
    return detail::take_result(*promise_);
  }

 private:
  detail::task_promise<T>* promise_;
};

namespace detail {
// A cache line ahead of a task_group's group_link, which every finishing child reads (child_done,
// joiner_home): the group lives in the spawning coroutine's frame, and that coroutine's locals
// just before it, written on every spawn, would otherwise share the line (see the fields' comment).
// A base, because the group_link base comes before any member.
struct leading_cache_line {
  char leading_line_[64] = {};
};
}  // namespace detail

class task_group : private detail::leading_cache_line, private detail::group_link {
 public:
  enum class policy {
    cancel_on_failure,  // the first failure cancels the other children (asyncio's TaskGroup)
    collect_all,        // children run to the end; every failure is collected
  };

  explicit task_group(policy on_failure = policy::cancel_on_failure) noexcept
      : policy_(on_failure) {
    child_done = &on_child_done;
    loose_link_.child_done = &on_loose_child_done;
    loose_link_.group = this;
  }
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  ~task_group() {
    // Children abandoned by a runtime's shutdown count as finished (they never run again): a
    // group destroyed by the shutdown sweep releases them like finished ones.
    const auto unfinished = [](detail::task_header* c) { return !c->finished(); };
    const bool still_running =
        running() != 0 && (std::any_of(children_.begin(), children_.end(), unfinished) ||
                           std::any_of(loose_.begin(), loose_.end(), unfinished));
    if (still_running) {
      std::fputs(
          "weft::task_group destroyed while children still run (it was never joined): "
          "co_await join() or use weft::with_task_group; terminating\n",
          stderr);
      std::terminate();
    }
    for (detail::task_header* child : children_)
      detail::release_root(child, true);
    // Those on the ended list are in loose_ too (released once).
    for (detail::task_header* child : loose_)
      detail::release_root(child, true);
  }

  // Spawns `work` as a child of the group (from any task of the runtime): a task, an awaitable
  // that stands for one (a weft::timeout), or `callable(args...)` returning a task, with the
  // callable and copies of the arguments stored in the child's frame. Throws std::logic_error
  // after the group was joined, and std::runtime_error once a child failed (policy
  // cancel_on_failure: the group is shutting down, as asyncio's). After cancel() it still spawns:
  // the child starts cancelled.
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  auto spawn(W&& work, Args&&... args) {
    return spawn_task(detail::make_task(std::forward<W>(work), std::forward<Args>(args)...));
  }

  // Same as spawn(work, args...), with a name that runtime::tasks() and the runtime's reports
  // show (asyncio's tg.create_task(coro, name=...)). `name` must outlive the child (a literal).
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  auto spawn_named(const char* name, W&& work, Args&&... args) {
    return spawn_task(
        detail::named(name, detail::make_task(std::forward<W>(work), std::forward<Args>(args)...)));
  }

  // Starts `work` (as spawn takes it) as a child whose result nobody takes: trio's
  // nursery.start_soon, or asyncio's tg.create_task with the task ignored. Same rules as spawn:
  // the group waits for it, its failure is the group's (cancelling the siblings under
  // cancel_on_failure), cancel() reaches it, and it refuses the same way after join or once a
  // child failed. What differs is memory: a child's frame (its value included) is freed soon after
  // it ends instead of when the group ends. Reaping is amortized on later start_soon calls: each
  // time the group's start_soon children (running or ended, not yet freed) reach twice what they
  // were after the last reaping, and at least `reap_batch`, the ended ones are freed; so the
  // group holds its running children and at most about as many ended ones (at least reap_batch).
  // Throws what spawn throws, and std::bad_alloc (nothing started then).
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  void start_soon(W&& work, Args&&... args) {
    start_task(detail::make_task(std::forward<W>(work), std::forward<Args>(args)...));
  }

  // Same as start_soon(work, args...), with a name (as spawn_named).
  template <class W, class... Args>
  requires detail::spawnable<W, Args...>
  void start_soon_named(const char* name, W&& work, Args&&... args) {
    start_task(
        detail::named(name, detail::make_task(std::forward<W>(work), std::forward<Args>(args)...)));
  }

  // start_soon frees ended children once the group holds at least this many (see start_soon).
  static constexpr std::size_t reap_batch = 64;

  // Cancels every child (running now or spawned later, until the group is joined).
  void cancel() noexcept {
    std::lock_guard lock(mutex_);
    cancel_locked(nullptr);
  }

  // Waits until every child finished; throws the group's failures as an exception_group. A
  // cancellation point (see the file comment).
  class join_awaiter;
  [[nodiscard]] join_awaiter join() noexcept;

  // Children still running.
  [[nodiscard]] std::size_t running() const noexcept {
    // Ordering: acquire, pairing with the release half of the children's decrements, so that the
    // spawns of every child counted as finished there are visible in spawned_ (a spawn happens
    // before its child ends); a snapshot for the caller. Below bias / 2 the bias is gone: join()
    // took it, and the count is the children themselves (see running_).
    const std::size_t count = running_.load(std::memory_order_acquire);
    if (count < bias / 2) return count;
    return spawned_.load(std::memory_order_relaxed) - (bias - count);
  }

 private:
  // spawn's work, once the task is made: links the child into the group before it starts.
  template <class T>
  group_handle<T> spawn_task(task<T> work) {
    if (!work.valid()) throw std::invalid_argument("weft::task_group::spawn: the task is empty");
    auto* promise = &work.release().promise();
    task<T> owner(std::coroutine_handle<detail::task_promise<T>>::from_promise(*promise));
    detail::join_group(promise, this);
    {
      std::lock_guard lock(mutex_);
      if (closed_) throw std::logic_error("weft::task_group::spawn after the group was joined");
      // A child failed and the group is cancelling the others: asyncio's TaskGroup refuses new
      // tasks then (RuntimeError, "shutting down") rather than start them only to cancel them.
      if (policy_ == policy::cancel_on_failure && !errors_.empty()) {
        throw std::runtime_error(
            "weft::task_group::spawn: the group is shutting down (a child failed)");
      }
      if (!count_spawn()) {
        throw std::logic_error("weft::task_group::spawn after the group was joined");
      }
      children_.push_back(promise);  // before it starts: cancel() must be able to reach it
      // Spawned into a group that is being cancelled: it starts cancelled.
      if (cancelling_.load(std::memory_order_relaxed)) detail::request_cancel(promise);
    }
    try {
      // The group keeps the handle's share of ownership; the frame is released with the group.
      (void)detail::spawn_on(nullptr, std::move(owner)).release();
    } catch (...) {
      bool last = false;
      {
        std::lock_guard lock(mutex_);
        children_.erase(std::find(children_.begin(), children_.end(), promise));
        last = uncount_spawn();
      }
      // The count reached zero here, once and for good (count_spawn never raises it from zero):
      // every other child ended while this one was counted, and nobody else resumes the joiner.
      if (last) detail::wake(joiner_home, joiner_);
      throw;
    }
    return group_handle<T>(promise);
  }

  // start_soon's work, once the task is made: as spawn_task, but the child is linked through
  // loose_link_ and listed in loose_, from which it is reaped after it ends (reap_locked).
  template <class T>
  void start_task(task<T> work) {
    if (!work.valid()) {
      throw std::invalid_argument("weft::task_group::start_soon: the task is empty");
    }
    auto* promise = &work.release().promise();
    task<T> owner(std::coroutine_handle<detail::task_promise<T>>::from_promise(*promise));
    detail::join_group(promise, &loose_link_);
    std::vector<detail::task_header*> reaped;
    {
      std::lock_guard lock(mutex_);
      if (closed_)
        throw std::logic_error("weft::task_group::start_soon after the group was joined");
      if (policy_ == policy::cancel_on_failure && !errors_.empty()) {
        throw std::runtime_error(
            "weft::task_group::start_soon: the group is shutting down (a child failed)");
      }
      // Everything that can throw comes before the child is counted.
      if (loose_.size() >= next_reap_) reap_locked(reaped);
      if (loose_.size() == loose_.capacity()) loose_.reserve(loose_.capacity() * 2 + 16);
      if (!count_spawn()) {
        throw std::logic_error("weft::task_group::start_soon after the group was joined");
      }
      loose_.push_back(promise);  // before it starts: cancel() must be able to reach it
      if (cancelling_.load(std::memory_order_relaxed)) detail::request_cancel(promise);
    }
    // Outside the lock: freeing a frame destroys the child's value, which is user code.
    for (detail::task_header* child : reaped)
      detail::release_root(child, true);
    try {
      (void)detail::spawn_on(nullptr, std::move(owner)).release();  // the group keeps the share
    } catch (...) {
      bool last = false;
      {
        std::lock_guard lock(mutex_);
        loose_.erase(std::find(loose_.begin(), loose_.end(), promise));
        last = uncount_spawn();
      }
      if (last) detail::wake(joiner_home, joiner_);  // as in spawn_task
      throw;
    }
  }

  // Called with mutex_ held, by start_task, once loose_ has grown to next_reap_: takes the
  // children listed as ended (on_loose_child_done) out of loose_ and into `out`, for the caller to
  // free. A child on the list is done with: its end pushed it there as the last thing it did with
  // the child (nor does complete_root touch it after child_done returns), so its frame may be
  // freed. Each is marked (its group field set to reaped_mark()) as the list is walked, and one
  // pass over loose_ drops the marked ones: O(1) per child, amortized, since the next reaping
  // waits until loose_ has doubled (and is at least reap_batch long).
  void reap_locked(std::vector<detail::task_header*>& out) {
    out.reserve(loose_.size());  // may throw: before anything changed (the list is a subset)
    // Ordering: acquire pairs with the release CAS of every push (a release sequence of RMWs):
    // each child's end, and its link to the next, happen before we read, mark and free it.
    detail::task_header* child = ended_head_.exchange(nullptr, std::memory_order_acquire);
    while (child != nullptr) {
      detail::task_header* next = next_ended(child);
      // Ordering: relaxed; read below by this thread only. Other children's ends write their
      // own fields meanwhile, never this one (this child's end is over).
      child->group_ref().store(reaped_mark(), std::memory_order_relaxed);
      out.push_back(child);
      child = next;
    }
    // A child not on the list is running (its field is loose_link_, or its end is writing the
    // next link right now) or ended after the exchange: neither is the mark. Ordering: relaxed;
    // the marks are this thread's own stores, and a concurrent end's store is never the mark.
    detail::group_link* const mark = reaped_mark();
    std::erase_if(loose_, [mark](detail::task_header* c) {
      return c->group_ref().load(std::memory_order_relaxed) == mark;
    });
    next_reap_ = std::max(reap_batch, 2 * loose_.size());
  }

  // The ended list's link: a start_soon child's group field, which nobody reads as a group after
  // the child's end has called child_done (complete_root reads it once, before), holds the next
  // ended child, and then the reaping's mark. Ordering: relaxed; the push's release CAS publishes
  // the link, and reap_locked's acquire exchange reads it.
  static void set_next_ended(detail::task_header* child, detail::task_header* next) noexcept {
    child->group_ref().store(reinterpret_cast<detail::group_link*>(next),
                             std::memory_order_relaxed);
  }
  static detail::task_header* next_ended(detail::task_header* child) noexcept {
    return reinterpret_cast<detail::task_header*>(
        child->group_ref().load(std::memory_order_relaxed));
  }
  // The value that marks a reaped child: an address in this group, so no task's (and no
  // function-local static, which a program and libweft might each have a copy of).
  detail::group_link* reaped_mark() noexcept {
    return reinterpret_cast<detail::group_link*>(&ended_head_);
  }

  // Called with mutex_ held: counts a spawn, or returns false if the group has finished.
  // Before join() took the bias, in spawned_, which only spawners write (under the lock) and
  // running() reads without it. After, in running_ instead, where the child's end will take it
  // off; but only while running_ is above zero. Zero is final: the child (or join) that reached
  // it resumed the joiner, which may be on its way out of join() before it sets closed_, so a
  // spawn then (from a task that is not a child of the group: a child keeps the count above zero
  // while it runs) would start a child nobody waits for, whose end would resume the joiner a
  // second time. It is refused as a spawn after join. Relaxed: the CAS decides by running_'s
  // modification order alone (before the last decrement, which then leaves our count in, or
  // after it, seeing zero); the child's start publishes the rest, as every spawn.
  bool count_spawn() noexcept {
    if (!bias_taken_) {
      spawned_.store(spawned_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return true;
    }
    std::size_t count = running_.load(std::memory_order_relaxed);
    do {
      if (count == 0) return false;
    } while (!running_.compare_exchange_weak(count, count + 1, std::memory_order_relaxed));
    return true;
  }

  // Called with mutex_ held: takes back the count of a spawn that failed to start. True if that
  // brought running_ to zero (after join() took the bias): the caller resumes the joiner then.
  bool uncount_spawn() noexcept {
    if (!bias_taken_) {
      spawned_.store(spawned_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
      return false;
    }
    // Ordering: acq_rel, as a child's end: the one reaching zero sees every child's writes and
    // passes them on with the wake-up (the joiner was stored before the bias was taken, which
    // this thread saw under the lock).
    return running_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }

  // Called with mutex_ held. `except`: the failed child that caused this (not cancelled again).
  void cancel_locked(detail::task_header* except) noexcept {
    cancelling_.store(true, std::memory_order_relaxed);
    for (detail::task_header* child : children_) {
      if (child != except) detail::request_cancel(child);
    }
    // Ended ones that are not reaped yet are alive; a request to a finished task does nothing.
    for (detail::task_header* child : loose_) {
      if (child != except) detail::request_cancel(child);
    }
  }
  // Called with mutex_ held: a child that ended with an exception other than its cancellation
  // becomes the group's failure (see on_child_done).
  void record_failure_locked(detail::task_header* child) noexcept {
    // A child that ended cancelled (by the group, or on its own through its handle) is not a
    // failure, as in asyncio's TaskGroup.
    if (!detail::failure_of(child) || detail::ended_cancelled(child)) return;
    errors_.push_back(detail::failure_of(child));
    if (policy_ == policy::cancel_on_failure) cancel_locked(child);
  }
  // A child's end, counted: returns the joiner if it was the last (see running_).
  std::coroutine_handle<> count_child_end() noexcept {
    // Before join() the bias keeps the count far from zero; after it, the child that brings it
    // to zero is the last one and resumes the joiner. Ordering: acq_rel; the one reaching zero
    // sees the joiner stored before join() released the bias, and every child's writes to the
    // group.
    if (running_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    return joiner_;
  }

  static std::coroutine_handle<> on_child_done(detail::group_link* link,
                                               detail::task_header* child) noexcept {
    auto* self = static_cast<task_group*>(link);
    if (detail::failure_of(child)) {
      std::lock_guard lock(self->mutex_);
      self->record_failure_locked(child);
    }
    return self->count_child_end();
  }
  // The end of a start_soon child: as on_child_done, and the child is pushed on the ended list,
  // to be freed by a later start_soon (reap_locked) or with the group. Lock-free (a Treiber push;
  // the only pop takes the whole list, so there is no ABA): the push is the last use of the
  // child here.
  static std::coroutine_handle<> on_loose_child_done(detail::group_link* link,
                                                     detail::task_header* child) noexcept {
    task_group* self = static_cast<loose_link*>(link)->group;
    if (detail::failure_of(child)) {
      std::lock_guard lock(self->mutex_);
      self->record_failure_locked(child);
    }
    // Ordering: relaxed load, a first guess for the CAS. The CAS is release: it publishes the
    // link (and the child's whole end) to reap_locked's acquire exchange; on failure it reloads
    // the head (relaxed: only the successful CAS publishes).
    detail::task_header* head = self->ended_head_.load(std::memory_order_relaxed);
    do {
      set_next_ended(child, head);
    } while (!self->ended_head_.compare_exchange_weak(head, child, std::memory_order_release,
                                                      std::memory_order_relaxed));
    return self->count_child_end();
  }
  // More than any number of children; see running_.
  static constexpr std::size_t bias = std::size_t{1} << 62;

  // The fields are in two groups, one cache line apart (by padding: a group can live in a
  // coroutine frame, which g++ does not over-align). The spawner's (the lock, the list, the
  // counts it keeps) and the finishing children's (running_) would otherwise share a line, and
  // every spawn would pull it from the worker where the last child ended (about 40% of a group's
  // cost per child over bare spawn, perf annotate on bench_task_group_spawn, 2026-12-07).
  const policy policy_;
  char spawner_side_[64] = {};
  std::mutex mutex_;                            // guards children_, errors_, closed_, bias_taken_
  std::vector<detail::task_header*> children_;  // owned (each holds a handle's share)
  // start_soon's children not freed yet (each holds a handle's share), running or ended; those
  // that ended are also on ended_head_'s list, and are freed by reap_locked or with the group.
  std::vector<detail::task_header*> loose_;
  std::size_t next_reap_ = reap_batch;      // reap when loose_ is this long
  std::vector<std::exception_ptr> errors_;  // in the order the children failed
  bool closed_ = false;
  bool bias_taken_ = false;  // join() took the bias out of running_
  std::atomic<bool> cancelling_{false};
  std::atomic<std::size_t> spawned_{0};  // children spawned before join() took the bias
  char children_side_[64] = {};
  // The group_link of start_soon's children (the group itself is that of spawn's), read by each
  // such child as it ends, with the group it belongs to.
  struct loose_link : detail::group_link {
    task_group* group = nullptr;
  };
  loose_link loose_link_;
  // start_soon's children that ended and are not reaped yet, linked through their group field
  // (next_ended). Pushed by their ends, taken whole by reap_locked.
  std::atomic<detail::task_header*> ended_head_{nullptr};
  // Invariant: running_ == bias + (children spawned after join() took the bias) - (children
  // finished) while the bias is in, and (children spawned) - (children finished) once join() took
  // it out. So spawned_ + running_ - bias is the children still running in either case, also in
  // the instant between join() marking the bias taken and subtracting it (running()). A spawn
  // before join therefore writes nothing here (the children's end is the only writer, and the
  // spawner does not share their cache line); join() subtracts bias minus the children spawned so
  // far, under the lock that orders it against spawns. The count reaches zero exactly once: in
  // join() (all had finished; it does not suspend), in the last child (which resumes the joiner)
  // or in a spawn that failed to start and took its count back (which wakes the joiner); before
  // join() it stays above bias - spawned_ > bias / 2, and no spawn raises it from zero
  // (count_spawn), so zero is final.
  std::atomic<std::size_t> running_{bias};
  std::atomic<bool> joined_{false};  // join() took the bias (the joiner is stored)
  std::coroutine_handle<> joiner_;   // written before the bias is taken
  // And one line after them, as one before the group_link (leading_cache_line): what surrounds
  // the group in its frame (the spawning coroutine's own locals, written on every spawn) would
  // otherwise share a line the children use. A 32-byte shift of the frame's layout (the task
  // header's, 2026-12-07) put such a local next to running_: on_child_done's fetch_sub went from
  // 278 to 1,845 perf samples in bench_task_group_spawn, and the group's spawn from 1.0x to 1.24x
  // of the commit before; with both lines, 1.04 and 1.09 (bench/ab, docs/architecture.md).
  char children_side_end_[64] = {};
};

class task_group::join_awaiter : private detail::cancellable_wait {
 public:
  explicit join_awaiter(task_group* group) noexcept : group_(group) {}

  [[nodiscard]] bool await_ready() const noexcept { return false; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    task_group* group = group_;
    // Ordering: acquire pairs with an earlier join's release store below; that join's own
    // decrement then saw every child's end, so "joined before" means all done and visible.
    if (group->joined_.load(std::memory_order_acquire)) return false;  // joined before: all done
    on_cancel = &cancel_children;
    owner_ = detail::root_of(self);
    if (begin(owner_, detail::wait_kind::task_group_join)) group->cancel();
    group->joiner_ = self;
    group->joiner_home = detail::current_runtime_core();  // published with the bias, as joiner_
    group->loose_link_.joiner_home = group->joiner_home;  // where start_soon's children look
    std::size_t take = 0;
    {
      // Under the lock: a spawn either came before (counted in spawned_, so in `take`) or comes
      // after and sees bias_taken_ (and counts itself in running_).
      std::lock_guard lock(group->mutex_);
      group->bias_taken_ = true;
      take = bias - group->spawned_.load(std::memory_order_relaxed);
    }
    // Ordering: release, read by a later join's acquire; the joiner itself is published by the
    // acq_rel subtraction below (see running_'s invariant).
    group->joined_.store(true, std::memory_order_release);
    // Take the bias out. Zero: every child finished, continue at once. Otherwise the last child
    // resumes us, possibly right away on another worker: touch nothing after this.
    return group->running_.fetch_sub(take, std::memory_order_acq_rel) != take;
  }

  void await_resume() {
    {
      std::lock_guard lock(group_->mutex_);
      group_->closed_ = true;
    }
    // A pending cancellation of the joining task: after the children's failures, it is delivered.
    std::exception_ptr cancelled;
    try {
      finish();
    } catch (const cancelled_error&) {
      cancelled = std::current_exception();
    }
    if (!group_->errors_.empty()) {
      // The failures win the exception, but the cancellation of the owner is not dropped: it is
      // made pending again, for the owner's next cancellation point. (Not thrown instead: the
      // failures would be lost. Not an exception_group holding it: a cancellation must stay a
      // cancelled_error that handlers written for errors let through.)
      if (cancelled && owner_ != nullptr) owner_->restore_pending_cancel();
      throw exception_group(group_->errors_);
    }
    if (cancelled) std::rethrow_exception(cancelled);
  }

 private:
  static void cancel_children(detail::cancel_hook* hook) noexcept {
    static_cast<join_awaiter*>(static_cast<detail::cancellable_wait*>(hook))->group_->cancel();
  }

  task_group* group_;
  detail::task_header* owner_ = nullptr;  // the task that joins (null outside a spawned task)
};

inline task_group::join_awaiter task_group::join() noexcept { return join_awaiter(this); }

// asyncio's `async with TaskGroup() as tg:` — runs body(group) as a child of a new group and joins
// it. Returns when every child has finished; throws the exception_group of their failures.
template <class Body>
task<void> with_task_group(Body body,
                           task_group::policy on_failure = task_group::policy::cancel_on_failure) {
  task_group group(on_failure);
  group.spawn(std::move(body), std::ref(group));
  co_await group.join();
}

}  // namespace weft
