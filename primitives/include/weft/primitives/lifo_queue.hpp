// weft/primitives/lifo_queue.hpp: weft::lifo_queue<T>, Python's asyncio.LifoQueue.
//
//   weft::lifo_queue<int> stack(10);   // maxsize 10; 0 (the default) is unbounded
//   co_await stack.put(1);
//   co_await stack.put(2);
//   int top = co_await stack.get();    // 2: the most recently put item first
//
// weft::queue's API and semantics (queue.hpp: maxsize, the _nowait forms, task_done and join,
// shutdown, cancellation, thread safety), with one difference: get takes the item put last.
// Waiting getters and waiting putters are still served in FIFO order among themselves, and an item
// put while getters wait goes straight to the first of them, as in asyncio.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include <weft/primitives/queue.hpp>

namespace weft {

namespace detail {

// The store of a lifo_queue: a vector whose back is the next item out. A push right after a pop
// reuses the freed capacity (no allocation), as queue_core requires.
template <class T>
class lifo_store {
 public:
  void push_back(T&& value) { items_.push_back(std::move(value)); }
  T pop_front() noexcept {
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  void swap(lifo_store& other) noexcept { items_.swap(other.items_); }

 private:
  std::vector<T> items_;
};

}  // namespace detail

template <class T>
class lifo_queue : public detail::basic_queue<T, detail::lifo_store<T>> {
 public:
  using detail::basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

}  // namespace weft
