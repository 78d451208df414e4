// weft/primitives/priority_queue.hpp: weft::priority_queue<T, Compare>, Python's
// asyncio.PriorityQueue.
//
//   weft::priority_queue<std::pair<int, std::string>> jobs;   // unbounded
//   co_await jobs.put({2, "later"});
//   co_await jobs.put({1, "first"});
//   auto [priority, name] = co_await jobs.get();              // {1, "first"}: the smallest
//
// weft::queue's API and semantics (queue.hpp: maxsize, the _nowait forms, task_done and join,
// shutdown, cancellation, thread safety), with one difference: get takes the smallest item under
// Compare (std::less<T> by default), as asyncio.PriorityQueue (a heapq) takes the lowest entry
// first. Note that this is the opposite of std::priority_queue, which pops the largest: pass
// std::greater<T> for largest first. Items that compare equal come out in no particular order (as
// with heapq); put (priority, sequence number, value) tuples for FIFO among equals.
//
// Requires: Compare is default-constructible and its calls do not throw (the heap is reordered
// under the queue's lock, in paths that cannot report an error).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include <weft/primitives/queue.hpp>

namespace weft {

namespace detail {

// The store of a priority_queue: a binary heap in a vector whose front is the smallest item under
// Compare (std::push_heap keeps the largest under its comparator at the front, so it is given the
// arguments swapped). A push right after a pop reuses the freed capacity (no allocation).
template <class T, class Compare>
class heap_store {
 public:
  void push_back(T&& value) {
    items_.push_back(std::move(value));  // strong guarantee: the heap is untouched if it throws
    std::push_heap(items_.begin(), items_.end(), later{});
  }
  T pop_front() noexcept {
    std::pop_heap(items_.begin(), items_.end(), later{});
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  void swap(heap_store& other) noexcept { items_.swap(other.items_); }

 private:
  // "a comes out after b": the heap's order, so that the front is the item that comes out first.
  struct later {
    bool operator()(const T& a, const T& b) const { return Compare{}(b, a); }
  };
  std::vector<T> items_;
};

}  // namespace detail

template <class T, class Compare = std::less<T>>
class priority_queue : public detail::basic_queue<T, detail::heap_store<T, Compare>> {
 public:
  using detail::basic_queue<T, detail::heap_store<T, Compare>>::basic_queue;
};

}  // namespace weft
