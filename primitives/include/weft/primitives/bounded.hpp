// weft/primitives/bounded.hpp: bounded concurrency over a list of items, the seed guide's "batch
// processing" and "rate-limited fetch" done two ways.
//
//   auto pages = co_await weft::map_bounded(urls, 5, fetch);          // a sliding window of 5
//   auto pages = co_await weft::process_in_batches(urls, 5, fetch);   // 5 at a time, in batches
//
// map_bounded keeps at most `limit` calls in flight and starts the next item as soon as one
// finishes (a sliding window: the usual choice); process_in_batches waits for a whole batch before
// starting the next (the seed's version), optionally pausing between batches. Both return the
// results in input order, run the calls concurrently on the pool, and fail like gather: the first
// failure cancels the calls in flight, waits for them, and is rethrown; nothing is left running.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/primitives/gather.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

template <class Fn, class Item>
using mapped_value_t = typename std::invoke_result_t<Fn&, const Item&>::value_type;

// One lane of the window: takes the next index until none is left.
template <class Item, class Fn, class R>
task<void> bounded_lane(const std::vector<Item>& items, Fn& fn, std::vector<std::optional<R>>& out,
                        std::atomic<std::size_t>& next) {
  for (;;) {
    // Ordering: relaxed; the index only has to be unique, and results are published to the
    // caller through gather's join.
    const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= items.size()) co_return;
    out[i].emplace(co_await fn(items[i]));
  }
}

}  // namespace detail

// Calls fn(item) for every item with at most `limit` calls in flight; results in input order.
// `fn` returns a weft::task<R> (R not void); items and fn must outlive the call (they do when
// the call is co_awaited at once, as gather's children borrow from the caller's frame).
template <class Item, class Fn>
task<std::vector<detail::mapped_value_t<Fn, Item>>> map_bounded(const std::vector<Item>& items,
                                                                std::size_t limit, Fn fn) {
  using R = detail::mapped_value_t<Fn, Item>;
  if (limit == 0) throw std::invalid_argument("weft::map_bounded: limit must be at least 1");
  std::vector<std::optional<R>> slots(items.size());
  std::atomic<std::size_t> next{0};
  std::vector<task<void>> lanes;
  for (std::size_t i = 0; i < std::min(limit, items.size()); ++i) {
    lanes.push_back(detail::bounded_lane(items, fn, slots, next));
  }
  co_await gather(std::move(lanes));
  std::vector<R> results;
  results.reserve(items.size());
  for (auto& slot : slots)
    results.push_back(std::move(*slot));
  co_return results;
}

// The seed's process_in_batches: `batch_size` calls at a time, each batch gathered before the
// next starts, with `pause` between batches. Results in input order.
template <class Item, class Fn>
task<std::vector<detail::mapped_value_t<Fn, Item>>> process_in_batches(
    const std::vector<Item>& items, std::size_t batch_size, Fn fn,
    clock::duration pause = clock::duration::zero()) {
  using R = detail::mapped_value_t<Fn, Item>;
  if (batch_size == 0) throw std::invalid_argument("weft::process_in_batches: batch_size is 0");
  std::vector<R> results;
  results.reserve(items.size());
  for (std::size_t start = 0; start < items.size(); start += batch_size) {
    std::vector<task<R>> batch;
    for (std::size_t i = start; i < std::min(start + batch_size, items.size()); ++i) {
      batch.push_back(fn(items[i]));
    }
    for (auto& value : co_await gather(std::move(batch)))
      results.push_back(std::move(value));
    if (start + batch_size < items.size() && pause > clock::duration::zero()) {
      co_await weft::sleep(pause);
    }
  }
  co_return results;
}

}  // namespace weft
