// weft/primitives/cancel_all.hpp: weft::cancel_all, the seed guide's "cancel all tasks and wait
// for them to finish" helper.
//
//   co_await weft::cancel_all(workers);            // every worker has finished now
//   for (auto& w : workers) if (w.cancelled()) ...  // inspect each, as with task.cancelled()
//
// Cancels every task, then waits until all have finished, without taking their results: each
// handle can still be inspected (cancelled(), done()) and its result or exception taken. A task
// that swallows its cancellation simply finishes; cancel_all waits for it all the same.
#pragma once

#include <vector>

#include <weft/primitives/gather.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

template <class T>
task<void> cancel_all(std::vector<join_handle<T>>& handles) {
  std::vector<detail::task_header*> headers;
  headers.reserve(handles.size());
  for (auto& handle : handles) {
    if (!handle.valid()) continue;
    handle.cancel();
    headers.push_back(handle.header());
  }
  detail::gather_countdown countdown(headers.size(), false);
  co_await countdown.wait_all(std::move(headers));
}

}  // namespace weft
