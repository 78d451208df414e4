// weft/primitives/queue.hpp: weft::queue<T>, Python's asyncio.Queue.
//
//   weft::queue<int> q(10);                  // maxsize 10; weft::queue<int> q; is unbounded
//   co_await q.put(1);                       // waits while the queue is full
//   int item = co_await q.get();             // waits while it is empty
//   q.task_done();                           // one item processed
//   co_await q.join();                       // until every item put was marked done
//   q.shutdown();                            // Python 3.13's Queue.shutdown
//
// Semantics, as asyncio's:
// - put waits while full, get while empty; waiting getters are served in FIFO order, and so are
//   waiting putters. An item put while getters wait goes straight to the first of them.
// - put_nowait throws weft::queue_full, get_nowait weft::queue_empty, instead of waiting. They may
//   be called from any thread, also one that is no worker of a runtime.
// - Every put counts an unfinished item; task_done() counts one as finished (std::logic_error if
//   called more often than items were put, as asyncio's ValueError); join() waits until none is
//   unfinished.
// - shutdown(): from then on put and put_nowait throw weft::queue_shut_down, and so do the putters
//   that were waiting; get keeps draining the items left and throws queue_shut_down once the
//   queue is empty, which wakes every waiting getter. shutdown(true) also drops the items left
//   (each counts as done for join, which may then return).
//
// Cancellation: put, get and join are cancellation points when they wait (an operation that
// completes at once does not suspend and does not throw cancelled_error, as in asyncio). A task
// cancelled while it waits throws cancelled_error, and its operation did not happen: a put did
// not insert its item, a get took none. A task cancelled after its operation was completed for
// it (woken but not yet resumed) keeps the result: get returns the item, put returns with the
// item in the queue; the cancellation is thrown at the task's next cancellation point. So no item
// is ever lost to a cancellation (detail/queue_core.hpp explains the hand-off).
//
// Thread safety: every member may be called from any thread; the awaitable ones from tasks on
// any runtime. Requires: the queue outlives every task waiting on it. Items are moved in and out;
// T needs a noexcept move constructor.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <utility>

#include <weft/primitives/detail/queue_core.hpp>

namespace weft {

// put_nowait on a full queue (asyncio.QueueFull).
class queue_full : public std::runtime_error {
 public:
  queue_full() : std::runtime_error("weft::queue: the queue is full") {}
};

// get_nowait on an empty queue (asyncio.QueueEmpty).
class queue_empty : public std::runtime_error {
 public:
  queue_empty() : std::runtime_error("weft::queue: the queue is empty") {}
};

// put after shutdown(), or get on a queue that was shut down and is empty (asyncio.QueueShutDown).
class queue_shut_down : public std::runtime_error {
 public:
  queue_shut_down() : std::runtime_error("weft::queue: the queue was shut down") {}
};

namespace detail {

// queue's API over a queue_core with item store `Store`: weft::queue (FIFO), weft::lifo_queue and
// weft::priority_queue differ only in the store, as asyncio's Queue, LifoQueue and PriorityQueue
// differ only in _put and _get.
template <class T, class Store>
class basic_queue {
 public:
  using get_awaiter = detail::get_awaiter<T, false, queue_shut_down, Store>;
  using put_awaiter = detail::put_awaiter<T, queue_shut_down, Store>;
  using join_awaiter = detail::join_awaiter<T, Store>;

  // maxsize 0 (the default): unbounded.
  explicit basic_queue(std::size_t maxsize = 0) noexcept : core_(maxsize) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;

  // Puts `item` at the back, waiting while the queue is full. Throws queue_shut_down after
  // shutdown(), cancelled_error if cancelled while waiting (the item was not put).
  [[nodiscard]] put_awaiter put(T item) noexcept { return put_awaiter(core_, std::move(item)); }

  // Takes the item at the front, waiting while the queue is empty. Throws queue_shut_down once
  // the queue was shut down and is empty, cancelled_error if cancelled while waiting.
  [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(core_); }

  // Puts `item` without waiting: throws queue_full if the queue is full, queue_shut_down after
  // shutdown(). `item` is left untouched when it throws.
  void put_nowait(T&& item) { put_now(item); }
  void put_nowait(const T& item) {
    T copy(item);
    put_now(copy);
  }

  // Takes the front item without waiting: throws queue_empty if there is none (queue_shut_down
  // if the queue was also shut down).
  T get_nowait() {
    std::optional<T> item;
    switch (core_.try_get(item)) {
      case detail::try_result::done:
        break;
      case detail::try_result::would_block:
        throw queue_empty();
      case detail::try_result::shut_down:
        throw queue_shut_down();
    }
    return std::move(*item);
  }

  // Marks one item taken from the queue as processed. Throws std::logic_error if there is no
  // unfinished item.
  void task_done() { core_.task_done(); }

  // Waits until every item put so far was marked done (returns at once if none is unfinished).
  [[nodiscard]] join_awaiter join() noexcept { return join_awaiter(core_); }

  // Stops the queue (Python 3.13): see the file comment. Idempotent.
  void shutdown(bool immediate = false) noexcept { core_.shutdown(immediate); }

  // The number of items in the queue (items handed straight to waiting getters are not).
  [[nodiscard]] std::size_t size() noexcept { return core_.size(); }
  [[nodiscard]] bool empty() noexcept { return size() == 0; }
  [[nodiscard]] bool full() noexcept { return core_.maxsize() != 0 && size() >= core_.maxsize(); }
  [[nodiscard]] std::size_t maxsize() const noexcept { return core_.maxsize(); }
  // Items put and not yet marked done.
  [[nodiscard]] std::size_t unfinished_tasks() noexcept { return core_.unfinished(); }
  [[nodiscard]] bool is_shut_down() noexcept { return core_.is_shut_down(); }

 private:
  void put_now(T& item) {
    switch (core_.try_put(item)) {
      case detail::try_result::done:
        return;
      case detail::try_result::would_block:
        throw queue_full();
      case detail::try_result::shut_down:
        throw queue_shut_down();
    }
  }

  detail::queue_core<T, Store> core_;
};

}  // namespace detail

template <class T>
class queue : public detail::basic_queue<T, detail::ring_buffer<T>> {
 public:
  using detail::basic_queue<T, detail::ring_buffer<T>>::basic_queue;
};

}  // namespace weft
