// weft/primitives/streams.hpp: the combinators of async comprehensions: map, filter, take, chunk
// and collect, over any weft::async_iterator (a weft::generator or a hand-written iterator).
//
//   Python                                            weft
//   [user async for id in ids() if await active(id)   co_await weft::collect<std::vector<user>>(
//    for user in [await fetch(id)]]                      weft::map(weft::filter(ids(), active),
//                                                                  fetch))
//   {id async for id in ids() if await active(id)}    co_await weft::collect<std::set<int>>(
//                                                        weft::filter(ids(), active))
//   {id: u async for id in ids() for u in [...]}       collect<std::map<int, user>> of pairs
//
// Semantics (those of Python's comprehensions):
// - Lazy and in order: map, filter, take and chunk return a weft::generator that asks its source
//   for an item only when it is itself asked for one; nothing runs until it is consumed. Items
//   keep the source's order; one item is in flight at a time (no concurrency: for that, spawn or
//   see merge.hpp).
// - The callbacks (map's fn, filter's pred) may return a value or something awaitable (a
//   weft::task), which is awaited before the next item is asked for. They are moved into the
//   combinator's frame, so lambda captures stay alive as long as the stream.
// - take(src, n) asks for at most n items, never the (n+1)th.
// - An exception from the source or a callback ends the stream and comes out of the consumer's
//   next() (or collect).
// - Sources: an rvalue is moved into the combinator (owned: dropping the combinator drops it),
//   an lvalue is borrowed by reference and must outlive the combinator's use.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/primitives/async_iterator.hpp>
#include <weft/primitives/generator.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

template <class Src, class F, class U>
generator<U> map_impl(Src source, F fn) {
  while (auto item = co_await source.next()) {
    if constexpr (awaitable<std::invoke_result_t<F&, stream_value_t<Src>&&>>) {
      co_yield co_await std::invoke(fn, std::move(*item));
    } else {
      co_yield std::invoke(fn, std::move(*item));
    }
  }
}

template <class Src, class P>
generator<stream_value_t<Src>> filter_impl(Src source, P pred) {
  while (auto item = co_await source.next()) {
    bool keep = false;
    if constexpr (awaitable<std::invoke_result_t<P&, const stream_value_t<Src>&>>) {
      keep = static_cast<bool>(co_await std::invoke(pred, std::as_const(*item)));
    } else {
      keep = static_cast<bool>(std::invoke(pred, std::as_const(*item)));
    }
    if (keep) co_yield std::move(*item);
  }
}

template <class Src>
generator<stream_value_t<Src>> take_impl(Src source, std::size_t count) {
  for (std::size_t taken = 0; taken < count; ++taken) {
    auto item = co_await source.next();
    if (!item) co_return;
    co_yield std::move(*item);
  }
}

template <class Src>
generator<std::vector<stream_value_t<Src>>> chunk_impl(Src source, std::size_t size) {
  std::vector<stream_value_t<Src>> batch;
  batch.reserve(size);
  while (auto item = co_await source.next()) {
    batch.push_back(std::move(*item));
    if (batch.size() == size) {
      co_yield std::exchange(batch, {});
      batch.reserve(size);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

template <class C, class Src>
task<C> collect_impl(Src source) {
  C out;
  while (auto item = co_await source.next()) {
    if constexpr (requires { out.push_back(std::move(*item)); }) {
      out.push_back(std::move(*item));
    } else if constexpr (requires {
                           out.insert_or_assign(std::move(item->first), std::move(item->second));
                         }) {
      out.insert_or_assign(std::move(item->first), std::move(item->second));
    } else {
      out.insert(std::move(*item));
    }
  }
  co_return out;
}

}  // namespace detail

// [fn(x) async for x in source]: each item passed through fn (awaited if fn returns a task).
template <class S, class F>
requires async_iterator<std::remove_cvref_t<S>>
auto map(S&& source, F fn) {
  using result = std::remove_cvref_t<detail::call_result_t<F, stream_value_t<S>&&>>;
  static_assert(!std::is_void_v<result>, "weft::map: fn must return a value");
  return detail::map_impl<detail::source_storage_t<S&&>, F, result>(std::forward<S>(source),
                                                                    std::move(fn));
}

// [x async for x in source if pred(x)] (pred awaited if it returns a task; it gets a const&).
template <class S, class P>
requires async_iterator<std::remove_cvref_t<S>>
auto filter(S&& source, P pred) {
  return detail::filter_impl<detail::source_storage_t<S&&>, P>(std::forward<S>(source),
                                                               std::move(pred));
}

// The first `count` items of source; the source is never asked for more.
template <class S>
requires async_iterator<std::remove_cvref_t<S>>
auto take(S&& source, std::size_t count) {
  return detail::take_impl<detail::source_storage_t<S&&>>(std::forward<S>(source), count);
}

// The items in vectors of `size` (the last one may be shorter; none is empty). size 0 is treated
// as 1.
template <class S>
requires async_iterator<std::remove_cvref_t<S>>
auto chunk(S&& source, std::size_t size) {
  return detail::chunk_impl<detail::source_storage_t<S&&>>(std::forward<S>(source),
                                                           size == 0 ? 1 : size);
}

// Consumes source into a container C: push_back where C has it (vector, deque, list), else
// insert (set, unordered_set); a map or unordered_map from a stream of pairs keeps the last value
// of a key, as Python's dict comprehension does (insert_or_assign).
template <class C, class S>
requires async_iterator<std::remove_cvref_t<S>> task<C> collect(S&& source) {
  return detail::collect_impl<C, detail::source_storage_t<S&&>>(std::forward<S>(source));
}

// Consumes source into a std::vector.
template <class S>
requires async_iterator<std::remove_cvref_t<S>> task<std::vector<stream_value_t<S>>> collect(
    S&& source) {
  return detail::collect_impl<std::vector<stream_value_t<S>>, detail::source_storage_t<S&&>>(
      std::forward<S>(source));
}

}  // namespace weft
