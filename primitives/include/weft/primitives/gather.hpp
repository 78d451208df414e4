// weft/primitives/gather.hpp: weft::gather, Python's asyncio.gather.
//
//   auto [user, posts] = co_await weft::gather(fetch_user(id), fetch_posts(id));   // a tuple
//   std::vector<page> pages = co_await weft::gather(std::move(fetches));           // a vector
//   auto results = co_await weft::gather(weft::return_exceptions, std::move(fetches));
//
// Every child is spawned at once (a join_handle of a task already running may be passed instead)
// and runs concurrently on the pool; the results come back in argument order (a child returning
// void gives std::monostate). gather always waits for every child before it returns or throws, so
// no child outlives the call and children may borrow from the caller's frame.
//
// Failures: the first child to fail (in time) cancels its siblings; once all have finished,
// gather rethrows that first exception. With weft::return_exceptions nothing is cancelled and
// nothing is thrown for a child: each gives an outcome<T> (value or exception).
//
// Cancellation: cancelling the task that awaits gather cancels every child; gather waits for them
// and throws cancelled_error.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/primitives/outcome.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct return_exceptions_t {
  explicit return_exceptions_t() = default;
};
// Tag: gather returns an outcome per child instead of throwing.
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Waits until every child of a gather finished. One countdown for the whole gather, one small
// waiter per child (registered as that child's join_waiter), all in the gather coroutine's frame.
//
// Invariant: `remaining` starts at children + 1. Each child's completion takes one; the awaiter
// takes the last one after it registered every child, so the gather cannot be resumed while it is
// still registering. Whoever takes the count to zero resumes (or does not suspend) the gather.
//
// Cancellation: the first child to fail cancels its siblings (from the thread that completed
// it); cancelling the gathering task cancels every child. Either way the gather still waits for
// all of them, so no child outlives it.
class gather_countdown {
 public:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  // `cancel_on_failure`: the first failure cancels the other children (not for return_exceptions).
  gather_countdown(std::size_t children, bool cancel_on_failure)
      : waiters_(children), remaining_(children + 1), cancel_on_failure_(cancel_on_failure) {
    for (std::size_t i = 0; i < children; ++i) {
      waiters_[i].notify = &child_done;
      waiters_[i].countdown = this;
      waiters_[i].index = i;
    }
  }

  // The awaitable that registers on `headers` (the children's task headers, in order). A
  // cancellation point: cancelled, it cancels the children, waits for them, then throws
  // cancelled_error.
  class wait_all_awaiter : public cancellable_wait {
   public:
    explicit wait_all_awaiter(gather_countdown* countdown) noexcept : self_(countdown) {}
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
      self_->parent_ = parent;
      on_cancel = &cancel_children;
      if (begin(root_of(parent), detail::wait_kind::gather)) self_->cancel_all_but(none);
      for (std::size_t i = 0; i < self_->headers_.size(); ++i)
        self_->attach(i);
      // Ordering: acq_rel; if this is the last count, acquire makes every child's result
      // visible before the gather continues without suspending.
      return self_->remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1;
    }
    void await_resume() {
      finish();
      if (self_->refused_.load(std::memory_order_relaxed)) {
        throw std::logic_error(
            "weft::gather: a join_handle passed to gather is awaited by another task at once; a "
            "task can be awaited by one task at a time");
      }
    }

   private:
    static void cancel_children(cancel_hook* hook) noexcept {
      auto* self = static_cast<wait_all_awaiter*>(static_cast<cancellable_wait*>(hook));
      self->self_->cancel_all_but(none);
    }
    gather_countdown* self_;
  };

  wait_all_awaiter wait_all(std::vector<task_header*> headers) {
    headers_ = std::move(headers);
    return wait_all_awaiter{this};
  }

  // Index of the first child to fail, or `none`.
  [[nodiscard]] std::size_t first_failure() const noexcept {
    // Ordering: acquire pairs with record()'s acq_rel CAS; the gathering coroutine reads it after
    // remaining_ reached zero, which orders it already; other callers see a consistent index.
    return first_failure_.load(std::memory_order_acquire);
  }

  // The exception of the first child to fail, or null.
  [[nodiscard]] std::exception_ptr failure() const noexcept {
    const std::size_t index = first_failure();
    return index == none ? nullptr : headers_[index]->exception();
  }

 private:
  struct child_waiter : join_waiter {
    gather_countdown* countdown = nullptr;
    std::size_t index = 0;
  };

  void attach(std::size_t index) noexcept {
    task_header* child = headers_[index];
    waiters_[index].home = current_runtime_core();
    switch (child->register_waiter(&waiters_[index])) {
      case join_registration::registered:
        return;
      case join_registration::busy:
        // Another task awaits this child (a handle passed to gather while awaited elsewhere):
        // do not wait on it; the gather throws std::logic_error once the others finished.
        // Ordering: relaxed; read by the gathering coroutine after remaining_ reached zero, whose
        // acq_rel decrements order it.
        refused_.store(true, std::memory_order_relaxed);
        // Ordering: acq_rel, one link of remaining_'s RMW chain (see child_done).
        remaining_.fetch_sub(1, std::memory_order_acq_rel);
        return;
      case join_registration::finished:
        break;
    }
    // Finished before we got here: count it now.
    record(index, child);
    // Ordering: acq_rel, one link of remaining_'s RMW chain (see child_done).
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }

  void record(std::size_t index, task_header* child) noexcept {
    if (!failure_of(child)) return;
    std::size_t expected = none;
    // Ordering: acq_rel; only the first failure wins. Its release is read by first_failure().
    if (first_failure_.compare_exchange_strong(expected, index, std::memory_order_acq_rel) &&
        cancel_on_failure_) {
      cancel_all_but(index);
    }
  }

  // Children finished already ignore the request. The handles that gather holds keep every child
  // alive until gather returns, so the headers are valid here. Only the first call cancels: a
  // child that ends with the cancelled_error gather caused is then recorded as a failure, and
  // cancelling its siblings a second time would interrupt the cleanup they are running.
  void cancel_all_but(std::size_t index) noexcept {
    // Ordering: acq_rel, though only atomicity matters: exactly one caller cancels, and the
    // headers it reads are held alive by gather's handles, not ordered by this flag.
    if (cancelled_children_.exchange(true, std::memory_order_acq_rel)) return;
    for (std::size_t i = 0; i < headers_.size(); ++i) {
      if (i != index) request_cancel(headers_[i]);
    }
  }

  static std::coroutine_handle<> child_done(join_waiter* waiter, task_header* child) noexcept {
    auto* self = static_cast<child_waiter*>(waiter);
    gather_countdown* countdown = self->countdown;
    countdown->record(self->index, child);
    // Ordering: remaining_ is one RMW chain: each child's release carries its record() (and the
    // child's result) along, and the last decrement's acquire sees all of them before it
    // resumes the gathering coroutine, which then reads every result.
    if (countdown->remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      return countdown->parent_;
    }
    return std::noop_coroutine();
  }

  std::vector<task_header*> headers_;
  std::vector<child_waiter> waiters_;
  std::atomic<std::size_t> remaining_;
  std::atomic<std::size_t> first_failure_{none};
  std::atomic<bool> cancelled_children_{false};
  std::atomic<bool> refused_{false};
  std::coroutine_handle<> parent_;
  const bool cancel_on_failure_;
};

// What gather accepts as a child: a task (spawned by gather) or the handle of a task already
// spawned (asyncio.gather accepts both coroutines and tasks).
template <class C>
struct gather_child;
template <class T>
struct gather_child<task<T>> {
  using value_type = T;
  static join_handle<T> start(task<T>&& work) { return spawn(std::move(work)); }
};
template <class T>
struct gather_child<join_handle<T>> {
  using value_type = T;
  static join_handle<T> start(join_handle<T>&& handle) {
    if (!handle.valid()) throw std::invalid_argument("weft::gather: an empty join_handle");
    return std::move(handle);
  }
};

template <task_convertible A>
struct gather_child<A> : gather_child<typename A::task_type> {
  static auto start(A&& work) {
    return gather_child<typename A::task_type>::start(typename A::task_type(std::move(work)));
  }
};

template <class C>
concept gatherable = requires {
  typename gather_child<C>::value_type;
};

template <class C>
using child_value_t = typename gather_child<C>::value_type;

template <class T>
gather_value_t<T> take_gathered(join_handle<T>& handle) {
  if constexpr (std::is_void_v<T>) {
    handle.take_result();
    return {};
  } else {
    return handle.take_result();
  }
}

template <class T>
outcome<T> take_outcome(join_handle<T>& handle) {
  try {
    if constexpr (std::is_void_v<T>) {
      handle.take_result();
      return outcome<T>::success();
    } else {
      return outcome<T>::success(handle.take_result());
    }
  } catch (...) {
    return outcome<T>::failure(std::current_exception());
  }
}

template <class... Ts, std::size_t... I>
std::vector<task_header*> headers_of(std::tuple<join_handle<Ts>...>& handles,
                                     std::index_sequence<I...>) {
  return {std::get<I>(handles).header()...};
}

template <class T>
std::vector<task_header*> headers_of(std::vector<join_handle<T>>& handles) {
  std::vector<task_header*> headers;
  headers.reserve(handles.size());
  for (auto& handle : handles)
    headers.push_back(handle.header());
  return headers;
}

// Takes (and drops) every child's outcome: gather retrieves them all, as asyncio's does, so none is
// reported as never retrieved.
template <class... Ts>
void consume_all(std::tuple<join_handle<Ts>...>& handles) {
  std::apply([](auto&... h) { (void(take_outcome(h)), ...); }, handles);
}
template <class T>
void consume_all(std::vector<join_handle<T>>& handles) {
  for (auto& handle : handles)
    (void)take_outcome(handle);
}

// Waits for every child of `handles`. Cancelled: consumes every outcome and rethrows. With
// `fail_fast`, the first failure cancels the siblings and is rethrown once all have finished.
// A nested task of the gather, so it shares the gather's cancellation.
template <class Handles>
task<void> join_children(Handles& handles, std::vector<task_header*> headers, bool fail_fast) {
  gather_countdown countdown(headers.size(), fail_fast);
  try {
    co_await countdown.wait_all(std::move(headers));
  } catch (const cancelled_error&) {
    consume_all(handles);
    throw;
  }
  if (const std::exception_ptr error = fail_fast ? countdown.failure() : nullptr) {
    consume_all(handles);
    std::rethrow_exception(error);
  }
}

}  // namespace detail

// Runs the children (tasks, or handles of tasks already running) concurrently and returns their
// values as a tuple, in argument order.
template <detail::gatherable... Cs>
task<std::tuple<detail::gather_value_t<detail::child_value_t<Cs>>...>> gather(Cs... children) {
  std::tuple<join_handle<detail::child_value_t<Cs>>...> handles{
      detail::gather_child<Cs>::start(std::move(children))...};
  co_await detail::join_children(
      handles, detail::headers_of(handles, std::index_sequence_for<Cs...>{}), true);
  co_return std::apply(
      [](auto&... h) {
        return std::tuple<detail::gather_value_t<detail::child_value_t<Cs>>...>{
            detail::take_gathered(h)...};
      },
      handles);
}

// Runs the children concurrently; each result is an outcome (value or exception). Never throws
// for a child's failure.
template <detail::gatherable... Cs>
task<std::tuple<outcome<detail::child_value_t<Cs>>...>> gather(return_exceptions_t,
                                                               Cs... children) {
  std::tuple<join_handle<detail::child_value_t<Cs>>...> handles{
      detail::gather_child<Cs>::start(std::move(children))...};
  co_await detail::join_children(
      handles, detail::headers_of(handles, std::index_sequence_for<Cs...>{}), false);
  co_return std::apply(
      [](auto&... h) {
        return std::tuple<outcome<detail::child_value_t<Cs>>...>{detail::take_outcome(h)...};
      },
      handles);
}

// Runs every child of `children` (tasks or handles) concurrently and returns their values in order.
template <detail::gatherable C>
task<std::vector<detail::gather_value_t<detail::child_value_t<C>>>> gather(
    std::vector<C> children) {
  using T = detail::child_value_t<C>;
  std::vector<join_handle<T>> handles;
  handles.reserve(children.size());
  for (auto& child : children)
    handles.push_back(detail::gather_child<C>::start(std::move(child)));
  co_await detail::join_children(handles, detail::headers_of(handles), true);
  std::vector<detail::gather_value_t<T>> results;
  results.reserve(handles.size());
  for (auto& handle : handles)
    results.push_back(detail::take_gathered(handle));
  co_return results;
}

// Runs every child of `children` concurrently; an outcome per child, in order.
template <detail::gatherable C>
task<std::vector<outcome<detail::child_value_t<C>>>> gather(return_exceptions_t,
                                                            std::vector<C> children) {
  using T = detail::child_value_t<C>;
  std::vector<join_handle<T>> handles;
  handles.reserve(children.size());
  for (auto& child : children)
    handles.push_back(detail::gather_child<C>::start(std::move(child)));
  co_await detail::join_children(handles, detail::headers_of(handles), false);
  std::vector<outcome<T>> results;
  results.reserve(handles.size());
  for (auto& handle : handles)
    results.push_back(detail::take_outcome(handle));
  co_return results;
}

}  // namespace weft
