// weft/scheduler/fork_join.hpp: weft::fork_join, running child tasks in parallel and joining them
// before the caller goes on (the fork-join shape of fib, skynet and divide-and-conquer).
//
//   weft::task<std::uint64_t> fib(int n) {
//     if (n < 2) co_return n;
//     auto [a, b] = co_await weft::fork_join(fib(n - 1), fib(n - 2));   // a tuple
//     co_return a + b;
//   }
//   std::vector<int> parts = co_await weft::fork_join(std::move(tasks));  // a vector
//   std::array<int, 4> quads = co_await weft::fork_join(std::move(four));  // an array (no heap)
//
// The children run concurrently on the pool and the results come back in argument order (a child
// returning void gives std::monostate), as weft::gather's; but a child is not a spawned task: it
// has no join_handle, no entry in the runtime's registry and no share of ownership to settle. The
// caller's frame owns the children's frames, and one countdown in that frame joins them. That is
// what makes it cheap (docs/architecture.md, "The fork-join path", has the costs per operation):
//
//   - work-first: the caller runs the first child at once on its own thread (symmetric transfer);
//     the others go onto the worker's deque, newest on top, where idle workers steal them;
//   - a child that ends pops its next sibling back from the same deque and runs it straight away
//     when no thief took it, carrying its own completion along instead of counting it down; the
//     countdown (one atomic RMW) is touched only where a chain of such hand-offs ends early, which
//     is when a sibling was stolen or a child suspended; when one chain ran every child, the last
//     resumes the caller without any.
//
// Contract (the same as gather's, docs/cancellation.md): fork_join always waits for every child
// before it returns or throws, so children may borrow from the caller's frame. The first child to
// fail (in time) cancels its siblings; once all have finished, that exception is rethrown. Awaiting
// fork_join is a cancellation point: cancelling the awaiting task cancels every child, and
// fork_join then throws cancelled_error once they have finished. Children may suspend (sleep, I/O,
// locks) like any task; each is its own cancellation scope, as a spawned task is. The caller's
// cancellation reaches a child at the child's cancellation points (a child that never reaches one
// cannot be interrupted anyway, as any task): the first child to reach one connects the caller's
// cancellation to all of them, so forks whose children only compute pay nothing for it.
//
// Use spawn (and a join_handle) instead for a task that may outlive the caller, or whose result is
// awaited later at a point decided at run time. Inside a fork_join child, weft::resume_on is
// refused (std::logic_error): the child must end on the runtime that joins it. fork_join must be
// awaited on a worker of a runtime (std::logic_error otherwise), like spawn.
#pragma once

#include <array>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

class fork_join_core;

// One child of a fork_join, in the caller's frame. The child's header points at it through
// `group` (a fork child is told apart from a spawned task by its `fork_child` mark, final_awaiter
// in task.hpp), so its completion finds its countdown and its place among the siblings.
struct fork_slot : group_link {
  // Only `carry` (and the link's fields) get a value here: adopt_child sets `header` and `frame`
  // in the awaiter's constructor, before anything can read them, and start() sets `core`,
  // `index` and `child_done`. Zeroing the whole array of slots (with member initializers, g++
  // emits a `rep stos`) was 4% of bench fib's time.
  fork_slot() noexcept {}  // NOLINT(cppcoreguidelines-pro-type-member-init): see above
  fork_join_core* core;
  task_header* header;
  void* frame;  // the address the deque holds for this child
  // Completions of siblings that ended before this child ran and handed their count on to it
  // (the hand-off chain, fork_join.cpp). Written by the thread that pops this child before it
  // resumes it, read by the child's own completion: the deque's push/pop (or the wake-up of a
  // suspended child) orders the two.
  std::size_t carry = 0;
  std::size_t index;
};

// The part of a fork_join that does not depend on the result types; its protocol lives in
// scheduler/fork_join.cpp.
class fork_join_core : protected cancellable_wait {
 public:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  fork_join_core() = default;
  fork_join_core(const fork_join_core&) = delete;
  fork_join_core& operator=(const fork_join_core&) = delete;

  // Throws std::logic_error unless the calling thread is a worker of a runtime.
  static void require_worker_thread() {
    if (this_worker == nullptr) [[unlikely]]
      throw_outside_worker();
  }

  // await_suspend: prepares every child, queues children 1..n-1 on the calling worker's deque and
  // returns child 0 to run now. The cancel hook is published later, by the first child that
  // reaches a cancellation point (arm). Requires: count >= 1.
  WEFT_API std::coroutine_handle<> start(std::coroutine_handle<> caller, task_header* root,
                                         fork_slot* slots, std::size_t count) noexcept;

  // Destroys the children's frames (finished, or never run: the caller's frame is destroyed while
  // suspended, at shutdown).
  static void destroy_children(fork_slot* slots, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (slots[i].frame != nullptr)
        std::coroutine_handle<>::from_address(slots[i].frame).destroy();
    }
  }

  // await_resume's first step: withdraws the hook if a child published it, throws
  // cancelled_error if the wait was cancelled (or the caller's cancellation is pending), else the
  // first child's failure.
  void finish_join() {
    // Ordering: the arming child's begin() finished before its completion was counted, and the
    // count orders every completion before this resumption; relaxed suffices.
    if (scope_.load(std::memory_order_relaxed) != 0) {
      finish();
    } else if (forker_ != nullptr &&
               (forker_->cancel_word().load(std::memory_order_relaxed) &
                task_header::cancel_pending) != 0 &&
               forker_->take_pending_cancel()) {
      // No child reached a cancellation point, and the caller was cancelled meanwhile. (The
      // plain load first: take_pending_cancel of a forker that is a fork child itself would arm
      // the scope above it, a cost the common case has no reason to pay.)
      throw cancellation_of(forker_);
    }
    // Ordering: the caller was resumed by the thread that counted the last completion (or by
    // its wake-up); every failure was recorded before its child's count was handed on.
    const std::size_t failed = failed_.load(std::memory_order_relaxed);
    if (failed != none) std::rethrow_exception(slots_[failed].header->exception());
  }

 private:
  friend struct fork_join_access;
  friend void arm_fork_scope(task_header* child) noexcept;
  [[noreturn]] WEFT_API static void throw_outside_worker();
  static void cancel_children(cancel_hook* hook) noexcept;
  void arm() noexcept;

  fork_slot* slots_ = nullptr;
  std::size_t count_ = 0;
  // Invariant: starts at count_ and drops by the completions each chain end hands in; the chain
  // end that takes it to zero resumes the caller. Ordering: acq_rel, so that the one reaching
  // zero sees every child's result and failure (released by the other chain ends).
  std::atomic<std::size_t> remaining_{0};
  // The first child to fail (index), or none: exchanged once (acq_rel) by the failing child.
  std::atomic<std::size_t> failed_{none};
  std::coroutine_handle<> caller_;
  runtime_core* home_ = nullptr;
  task_header* forker_ = nullptr;  // the caller's root (null outside a spawned task)
  // 0 until a child reaches a cancellation point, then 1: that child publishes the cancel hook in
  // the forker's header (arm, fork_join.cpp). Invariant: one CAS from 0 to 1, so one child arms.
  std::atomic<unsigned char> scope_{0};
};

template <class T>
using fork_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
fork_value_t<T> take_fork_result(task_header* header) {
  auto& promise = *static_cast<task_promise<T>*>(header);
  if constexpr (std::is_void_v<T>) {
    take_result(promise);
    return {};
  } else {
    return take_result(promise);
  }
}

// Takes the frame out of `t` into `slot` (the awaiter owns it from here on).
template <class T>
void adopt_child(fork_slot& slot, task<T>& t) noexcept {
  auto frame = t.release();
  slot.header = &frame.promise();
  slot.frame = frame.address();
}

template <class... T>
class fork_join_tuple_awaiter : fork_join_core {
 public:
  explicit fork_join_tuple_awaiter(task<T>... children) {
    if (!(children.valid() && ...)) {
      throw std::invalid_argument("weft::fork_join: a task is empty (moved-from?)");
    }
    std::size_t i = 0;
    (adopt_child(slots_[i++], children), ...);
  }
  ~fork_join_tuple_awaiter() { destroy_children(slots_, sizeof...(T)); }
  fork_join_tuple_awaiter(const fork_join_tuple_awaiter&) = delete;
  fork_join_tuple_awaiter& operator=(const fork_join_tuple_awaiter&) = delete;

  bool await_ready() const {
    require_worker_thread();
    return false;
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    return start(caller, root_of(caller), slots_, sizeof...(T));
  }

  std::tuple<fork_value_t<T>...> await_resume() {
    finish_join();
    return results(std::index_sequence_for<T...>{});
  }

 private:
  template <std::size_t... I>
  std::tuple<fork_value_t<T>...> results(std::index_sequence<I...>) {
    // Braced: the children's results are taken in argument order.
    return std::tuple<fork_value_t<T>...>{take_fork_result<T>(slots_[I].header)...};
  }

  fork_slot slots_[sizeof...(T)];
};

template <class T>
class fork_join_vector_awaiter : fork_join_core {
 public:
  explicit fork_join_vector_awaiter(std::vector<task<T>> children) : slots_(children.size()) {
    for (const auto& t : children) {
      if (!t.valid()) throw std::invalid_argument("weft::fork_join: a task is empty (moved-from?)");
    }
    for (std::size_t i = 0; i < children.size(); ++i)
      adopt_child(slots_[i], children[i]);
  }
  ~fork_join_vector_awaiter() { destroy_children(slots_.data(), slots_.size()); }
  fork_join_vector_awaiter(const fork_join_vector_awaiter&) = delete;
  fork_join_vector_awaiter& operator=(const fork_join_vector_awaiter&) = delete;

  bool await_ready() const {
    require_worker_thread();
    return slots_.empty();
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    return start(caller, root_of(caller), slots_.data(), slots_.size());
  }

  std::vector<fork_value_t<T>> await_resume() {
    std::vector<fork_value_t<T>> results;
    if (slots_.empty()) return results;
    finish_join();
    results.reserve(slots_.size());
    for (auto& slot : slots_)
      results.push_back(take_fork_result<T>(slot.header));
    return results;
  }

 private:
  std::vector<fork_slot> slots_;
};

template <class T, std::size_t N>
class fork_join_array_awaiter : fork_join_core {
 public:
  explicit fork_join_array_awaiter(std::array<task<T>, N> children) {
    for (const auto& t : children) {
      if (!t.valid()) throw std::invalid_argument("weft::fork_join: a task is empty (moved-from?)");
    }
    for (std::size_t i = 0; i < N; ++i)
      adopt_child(slots_[i], children[i]);
  }
  ~fork_join_array_awaiter() { destroy_children(slots_, N); }
  fork_join_array_awaiter(const fork_join_array_awaiter&) = delete;
  fork_join_array_awaiter& operator=(const fork_join_array_awaiter&) = delete;

  bool await_ready() const {
    require_worker_thread();
    return false;
  }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    return start(caller, root_of(caller), slots_, N);
  }

  std::array<fork_value_t<T>, N> await_resume() {
    finish_join();
    return results(std::make_index_sequence<N>{});
  }

 private:
  template <std::size_t... I>
  std::array<fork_value_t<T>, N> results(std::index_sequence<I...>) {
    return {take_fork_result<T>(slots_[I].header)...};
  }

  fork_slot slots_[N];
};

}  // namespace detail

// Runs the tasks concurrently (the first on the calling thread at once) and returns their results
// as a tuple, in argument order, once all have finished. See the file comment.
template <class... T>
requires(sizeof...(T) >= 1) [[nodiscard]] auto fork_join(task<T>... children) {
  return detail::fork_join_tuple_awaiter<T...>(std::move(children)...);
}

// The same for a fixed number of tasks of one type, without a heap allocation: an array of
// results, in order.
template <class T, std::size_t N>
requires(N >= 1) [[nodiscard]] auto fork_join(std::array<task<T>, N> children) {
  return detail::fork_join_array_awaiter<T, N>(std::move(children));
}

// The same for a run-time number of tasks of one type: a vector of results, in order (empty for
// no tasks, without suspending).
template <class T>
[[nodiscard]] auto fork_join(std::vector<task<T>> children) {
  return detail::fork_join_vector_awaiter<T>(std::move(children));
}

}  // namespace weft
