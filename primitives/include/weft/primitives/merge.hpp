// weft/primitives/merge.hpp: weft::merge, which interleaves several streams as their items
// arrive, and weft::as_completed, the stream of spawned tasks in the order they finish.
//
//   auto all = weft::merge(ticker("a", 100ms), ticker("b", 250ms));
//   while (auto item = co_await all.next()) ...           // items in arrival order
//
//   for (auto done = weft::as_completed(std::move(handles)); auto h = co_await done.next();)
//     use(co_await *h);                                   // finished: does not wait
//
// merge(a, b, ...) is the one combinator with concurrency: when first asked for an item it spawns
// one pump task per source (so it must be consumed inside a runtime). A pump asks its source for
// an item, hands it to a small internal queue, and waits until the consumer took it before it
// asks for the next one: each source runs at most one item ahead of the consumer (back-pressure),
// and the queue holds at most one item per source. Items of one source keep their order.
//
// No pump outlives the stream's use:
// - When every source has ended, the stream ends after joining the pumps (they have finished).
// - An exception from a source ends the stream at that item, in arrival order: the other pumps
//   are cancelled and joined, then next() rethrows it.
// - When the consumer is cancelled while it waits for an item, the pumps are cancelled and
//   joined, then next() throws cancelled_error.
// - `co_await stream.close()` cancels and joins the pumps.
// - Dropping the stream early (without close()) cannot wait (a destructor cannot co_await): it
//   cancels the pumps, which finish at their next cancellation point on their own. The sources
//   were moved into the pumps and the queue is shared with them, so nothing they touch dangles;
//   use close() when the sources' cleanup must have run before going on.
// Sources are taken by value (moved in): the pumps own them.
//
// as_completed(handles) gives the handles back one at a time as their tasks finish (ties in
// input order); awaiting a handle it gave does not wait. Dropping it early drops the remaining
// handles, which detaches their tasks (they are not cancelled), as asyncio.as_completed leaves
// them running.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/primitives/async_iterator.hpp>
#include <weft/primitives/cancel_all.hpp>
#include <weft/primitives/detail/wake_signal.hpp>
#include <weft/primitives/generator.hpp>
#include <weft/primitives/wait.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

// The queue between the pumps and the consumer, shared by all of them.
template <class T>
struct merge_queue {
  struct entry {
    std::size_t source;
    std::optional<T> item;     // empty: the source ended (or failed)
    std::exception_ptr error;  // the source failed
  };

  explicit merge_queue(std::size_t sources) : space(sources) {}

  void push(entry e) {
    {
      std::lock_guard lock(mutex);
      entries.push_back(std::move(e));
    }
    arrived.notify();
  }
  std::optional<entry> pop() {
    std::lock_guard lock(mutex);
    if (entries.empty()) return std::nullopt;
    entry e = std::move(entries.front());
    entries.pop_front();
    return e;
  }

  std::mutex mutex;
  std::deque<entry> entries;       // guarded by mutex
  wake_signal arrived;             // the consumer waits here for an entry
  std::vector<wake_signal> space;  // pump i waits here until its item was taken
};

template <class T, class Src>
task<void> merge_pump(std::size_t index, Src source_in, std::shared_ptr<merge_queue<T>> queue) {
  // A local, not the parameter: locals are destroyed when the body ends (also by an exception),
  // parameters only with the frame, which the join_handle keeps. So a joined pump has already
  // destroyed its source and run the source's cleanup.
  Src source = std::move(source_in);
  std::exception_ptr error;
  try {
    while (auto item = co_await source.next()) {
      queue->push({index, std::move(item), nullptr});
      co_await queue->space[index].wait();
    }
  } catch (const cancelled_error&) {
    throw;  // merge is tearing down: end cancelled (not reported, not swallowed)
  } catch (...) {
    error = std::current_exception();
  }
  queue->push({index, std::nullopt, error});
}

// Cancels the pumps when the stream's frame is destroyed; the handles are then detached (their
// tasks own everything they use). After a join, the handles are done and this does nothing more.
struct pump_guard {
  std::vector<join_handle<void>>& pumps;
  ~pump_guard() {
    for (auto& pump : pumps) {
      if (!pump.valid()) continue;
      pump.cancel();
      pump.detach();
    }
  }
};

template <class T, class... Src>
generator<T> merge_impl(Src... sources) {
  constexpr std::size_t count = sizeof...(Src);
  auto queue = std::make_shared<merge_queue<T>>(count);
  std::vector<join_handle<void>> pumps;
  pumps.reserve(count);
  pump_guard guard{pumps};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (pumps.push_back(spawn(merge_pump<T, Src>(I, std::move(sources), queue))), ...);
  }
  (std::index_sequence_for<Src...>{});

  std::exception_ptr error;  // also generator_exit from close(), and cancelled_error
  try {
    std::size_t live = count;
    while (live > 0) {
      auto e = queue->pop();
      if (!e) {
        co_await queue->arrived.wait();
        continue;
      }
      if (e->error) std::rethrow_exception(e->error);
      if (!e->item) {
        --live;
        continue;
      }
      queue->space[e->source].notify();  // the pump may fetch its next item meanwhile
      co_yield std::move(*e->item);
    }
  } catch (...) {
    error = std::current_exception();
  }
  // Join: every pump has finished when the stream ends, fails, is cancelled or closed.
  co_await cancel_all(pumps);
  pumps.clear();  // finished: free their frames now rather than with this generator
  if (error) std::rethrow_exception(error);
}

template <class T>
generator<join_handle<T>> as_completed_impl(std::vector<join_handle<T>> pending) {
  while (!pending.empty()) {
    auto [done, rest] = co_await wait(std::move(pending), first_completed);
    pending = std::move(rest);
    for (auto& handle : done)
      co_yield std::move(handle);
  }
}

}  // namespace detail

// Interleaves the items of several async iterators of the same value type as they arrive.
template <class... S>
requires(sizeof...(S) > 0 && (async_iterator<S> && ...) &&
         (!std::is_reference_v<S> && ...)) auto merge(S... sources) {
  using T = stream_value_t<std::tuple_element_t<0, std::tuple<S...>>>;
  static_assert((std::is_same_v<T, stream_value_t<S>> && ...),
                "weft::merge: every source must have the same value type");
  return detail::merge_impl<T, S...>(std::move(sources)...);
}

// The handles, each given back once its task has finished, in finishing order.
template <class T>
generator<join_handle<T>> as_completed(std::vector<join_handle<T>> handles) {
  return detail::as_completed_impl<T>(std::move(handles));
}

}  // namespace weft
