// scheduler/fork_join.cpp: the runtime's side of weft::fork_join (fork_join.hpp): starting the
// children work-first and counting them back in with as few atomic operations as the steals allow.
//
// The count. `remaining` starts at n, the number of children. Every child's completion is counted
// exactly once, but not always by itself: a child that ends on the worker whose deque still holds
// its next sibling (the common case: nobody stole it) pops that sibling and runs it at once,
// handing it the completions it carries plus its own (slot.carry). Such a chain of hand-offs ends
// at a child that finds no sibling to pop (it was stolen, a child suspended and others ran first,
// or the budget asked for a return to the worker loop); that child hands in everything carried
// with one fetch_sub. If the chain carried all n, no other thread ever saw the count (only
// children that ran elsewhere subtract, and none did), so the last child resumes the caller
// without touching it.
//
// Why a slot's carry needs no atomics: it is written by the thread that popped the child, before
// it resumes the child, and read by the child's own completion; every path from the one to the
// other is a resumption of that child (the transfer right after the pop, or a later wake-up of a
// suspended child through a queue, which publishes what came before). A child is popped by a
// chain at most once while it is queued, so two chains never write the same carry at once.
//
// Cancellation follows docs/cancellation.md as gather does: the caller's wait is a cancellable
// wait whose on_cancel cancels every child (each child is its own root, so its waits publish
// their hooks in its own header); the first child to fail cancels its siblings from its
// completion. The lazy scope: the hook is not published when the caller forks (a seq_cst store
// and load, and an exchange to take it back: a quarter of fib's time) but by the first child that
// reaches a cancellation point (task_header::take_pending_cancel calls arm_fork_scope for a root
// without a frame). A cancellation of the caller requested before that is found by the arming
// (begin() sees it pending and cancels every child); one requested after finds the hook. A child
// that never reaches a cancellation point cannot see a cancellation anyway; if no child reached
// one, the caller's pending cancellation is thrown when it resumes (finish_join). The caller is
// resumed only after every child is counted, so a child's frame and header are alive whenever
// on_cancel or a failing sibling cancels it; the caller's finish() waits for an on_cancel still
// running before the frames are destroyed.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/fork_join.hpp>

#include <cstdint>
#include <stdexcept>

#include "dump.hpp"
#include "runtime_core.hpp"
#include "worker.hpp"

namespace weft::detail {

void worker::push_fork(void* task) {
  if (!deque_.push(task)) [[unlikely]] {
    push_overflowing(task);
  }
}

void worker::notify_forked() {
  if (deque_.light()) {
    // Light mode (deque.hpp): the parking side runs the heavy fence (idle.hpp).
    if (pool_.idle.maybe_should_wake_for_local_work_light()) [[unlikely]]
      pool_.wake_for_local_work();
    return;
  }
  pool_.notify_for_local_work();
}

namespace {

// The end of a hand-off chain: `done` completions (the ending child's and those it carried) are
// handed in. Returns the caller to resume here, or noop.
std::coroutine_handle<> hand_in(fork_join_core* core, std::size_t done, std::size_t count,
                                std::atomic<std::size_t>& remaining, std::coroutine_handle<> caller,
                                runtime_core* home, worker* self) noexcept {
  if (done != count) {
    // Ordering: acq_rel. Release publishes this chain's children's results and failures to the
    // chain end that reaches zero; acquire makes that one see every other chain's.
    if (remaining.fetch_sub(done, std::memory_order_acq_rel) != done) return std::noop_coroutine();
  }
  (void)core;
  // Every child is counted. The caller resumes on its own runtime: here by symmetric transfer if
  // this thread is one of its workers, else through its injection queue.
  if (self != nullptr && &self->runtime() == home) return caller;
  wake(home, caller);
  return std::noop_coroutine();
}

}  // namespace

struct fork_join_access {
  static std::coroutine_handle<> child_done(group_link* link, task_header* child) noexcept {
    auto* slot = static_cast<fork_slot*>(link);
    fork_join_core* core = slot->core;
    const std::size_t index = slot->index;
    const std::size_t count = core->count_;
    const std::size_t done = slot->carry + 1;
    if (child->failed()) [[unlikely]]
      on_failure(core, index);
    worker* self = current_worker();
    if (index + 1 < count && self != nullptr && &self->runtime() == core->home_) {
      fork_slot& next = core->slots_[index + 1];
      if (self->pop_fork(next.frame)) {
        // The sibling was still at the bottom of this deque: run it now, carrying the count.
        next.carry += done;
        return std::coroutine_handle<>::from_address(next.frame);
      }
    }
    return hand_in(core, done, count, core->remaining_, core->caller_, core->home_, self);
  }

  // runtime::dump (dump.hpp). The tuple and array forms keep their slots in the awaiter, right
  // after this base: inside the caller's frame, which the dump's frame_inspection keeps. The
  // vector form's slots are on the heap, freed without that protocol: they are not read. Told
  // apart without a field (no cost on fork's path): a slot array that starts within
  // sizeof(fork_join_core) + alignof(fork_slot) bytes of the core is inside the awaiter (the
  // vector form's awaiter is larger than that range, so its heap buffer cannot lie in it).
  __attribute__((no_sanitize("thread"))) static fork_listing children_of(
      const cancel_hook* hook, fork_child* children, std::size_t max, std::size_t& count) noexcept {
    count = 0;
    if (hook->on_cancel != &fork_join_core::cancel_children) return fork_listing::not_fork;
    const auto* core =
        static_cast<const fork_join_core*>(static_cast<const cancellable_wait*>(hook));
    const fork_slot* slots = core->slots_;
    const auto at = reinterpret_cast<std::uintptr_t>(slots);
    const auto base = reinterpret_cast<std::uintptr_t>(core);
    if (at < base || at >= base + sizeof(fork_join_core) + alignof(fork_slot)) {
      return fork_listing::unlisted;
    }
    const std::size_t n = core->count_ < max ? core->count_ : max;
    for (std::size_t i = 0; i < n; ++i)
      children[i] = {slots[i].header, slots[i].frame};
    count = n;
    return fork_listing::listed;
  }

  // The first failure (in time) is recorded and cancels the other children; later ones are not
  // rethrown (gather's rule).
  static void on_failure(fork_join_core* core, std::size_t index) noexcept {
    std::size_t expected = fork_join_core::none;
    // Ordering: acq_rel on success is more than needed (finish_join reads failed_ after the count
    // reached zero, which orders it), but a failure is rare.
    if (!core->failed_.compare_exchange_strong(expected, index, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
      return;
    }
    for (std::size_t i = 0; i < core->count_; ++i) {
      if (i != index) request_cancel(core->slots_[i].header);
    }
  }
};

fork_listing fork_children_of(const cancel_hook* hook, fork_child* children, std::size_t max,
                              std::size_t& count) noexcept {
  return fork_join_access::children_of(hook, children, max, count);
}

void fork_join_core::throw_outside_worker() {
  throw std::logic_error(
      "weft::fork_join awaited outside a worker of a weft runtime (await it in a task)");
}

std::coroutine_handle<> fork_join_core::start(std::coroutine_handle<> caller, task_header* root,
                                              fork_slot* slots, std::size_t count) noexcept {
  worker* self = current_worker();  // not null: await_ready checked
  slots_ = slots;
  count_ = count;
  caller_ = caller;
  home_ = &self->runtime();
  // Relaxed: published to thieves by the pushes below (release), and to this thread's own
  // children by program order.
  remaining_.store(count, std::memory_order_relaxed);
  for (std::size_t i = 0; i < count; ++i) {
    fork_slot& slot = slots[i];
    slot.child_done = &fork_join_access::child_done;
    slot.core = this;
    slot.index = i;
    task_header* child = slot.header;
    // A child is its own cancellation root (task_header::root(), once its runtime is set): its
    // waits publish their hooks in its own header, which two children on two threads could not
    // share.
    child->set_fork_child();
    child->set_runtime(home_);
    child->set_group(&slot);
  }
  on_cancel = &cancel_children;
  forker_ = root;
  scope_.store(0, std::memory_order_relaxed);  // published with the children, as remaining_
  // Newest last: the owner's pops take children 1, 2, ... in order; thieves take the last ones.
  for (std::size_t i = count; i-- > 1;)
    self->push_fork(slots[i].frame);
  // One wake-up check (a seq_cst fence, idle.hpp) after the last push covers every child pushed
  // before it: a worker that parks after the fence sees them in its re-check.
  if (count > 1) self->notify_forked();
  return std::coroutine_handle<>::from_address(slots[0].frame);
}

void fork_join_core::arm() noexcept {
  unsigned char expected = 0;
  // Ordering: the CAS only elects the one child that arms (relaxed would do; acq_rel is free on
  // x86 for an RMW). What the arming writes (begin's fields) reaches the caller through the count.
  if (scope_.load(std::memory_order_relaxed) != 0 ||
      !scope_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
    return;
  }
  // begin() is the caller's cancellation point, taken on its behalf while it is suspended (this
  // child runs after the caller suspended and before its count lets the caller resume, so the
  // caller's task-local fields are this thread's to touch). If the forker is a fork child itself,
  // its take_pending_cancel arms the scope above first, and so on up the chain.
  if (begin(forker_)) {
    // The caller was cancelled before: every child is cancelled (this one included, which throws
    // at the cancellation point that got here); finish() then throws cancelled_error.
    cancel_children(this);
  }
}

void arm_fork_scope(task_header* child) noexcept {
  // A fork child's `group` is its slot (fork_join_core::start).
  static_cast<fork_slot*>(child->group())->core->arm();
}

void fork_join_core::cancel_children(cancel_hook* hook) noexcept {
  auto* core = static_cast<fork_join_core*>(static_cast<cancellable_wait*>(hook));
  for (std::size_t i = 0; i < core->count_; ++i)
    request_cancel(core->slots_[i].header);
}

}  // namespace weft::detail
