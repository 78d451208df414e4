// weft/primitives/condition_variable.hpp: weft::condition_variable, Python's asyncio.Condition,
// working with weft::mutex.
//
//   auto guard = co_await m.lock();
//   co_await cv.wait(guard, [&] { return !items.empty(); });   // unlocks while it waits
//   take(items);                                                // holding the lock again
//   ...
//   cv.notify_one();   // from a task or any thread; holding the lock is allowed, not required
//
// wait(guard) queues the task on the condition, unlocks the mutex, suspends until a notify wakes
// it, then locks the mutex again before it returns. Waiters are woken in FIFO order. wait(guard,
// pred) loops until pred() holds (checked with the lock held), so spurious or stolen wake-ups do
// not matter. Requires: `guard` holds the lock; it holds it again whenever wait returns or throws.
//
// Cancellation: wait is a cancellation point. A cancelled waiter relocks the mutex (relocking
// itself cannot be interrupted, so the guard always holds the lock afterwards) and throws
// cancelled_error. A waiter cancelled after notify_one chose it but before it resumed passes the
// notification on to the next waiter (reliability rule 3), so a notify_one is never lost to a
// cancellation. So does a waiter cancelled while it relocks after a notification: it relocks,
// passes the notification on and throws cancelled_error (asyncio.Condition.wait does the same;
// the extra wake-up is a spurious one, which wait(guard, pred) absorbs).
//
// Costs: the waiter node lives in the awaiter; notify_one/notify_all take the queue's spinlock.
// wait itself is a small coroutine (a frame allocation from weft's frame allocator).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/primitives/mutex.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class condition_variable {
 public:
  condition_variable() = default;
  // Requires: no task waits.
  ~condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  // Unlocks `guard`'s mutex, waits for a notification, relocks. Await it at once (`guard` is
  // held by reference).
  WEFT_API task<void> wait(mutex::guard& guard);

  // Waits until pred() is true, evaluating it with the lock held.
  template <class Predicate>
  task<void> wait(mutex::guard& guard, Predicate pred) {
    while (!pred())
      co_await wait(guard);
  }

  // Wakes the first waiter, if any. Any thread.
  WEFT_API void notify_one() noexcept;

  // Wakes the first `n` waiters (fewer if fewer wait), as asyncio's Condition.notify(n). Any
  // thread.
  WEFT_API void notify(std::size_t n) noexcept;

  // Wakes every waiter. Any thread.
  WEFT_API void notify_all() noexcept;

 private:
  // The awaiter of one wait: queues, unlocks the mutex, suspends
  // (primitives/condition_variable.cpp).
  class notified_awaiter;

  detail::wait_queue queue_;
};

}  // namespace weft
