// weft/primitives/event.hpp: weft::event, Python's asyncio.Event.
//
//   weft::event ready;
//   // consumer task                      // producer (a task or any thread)
//   co_await ready.wait();                 ready.set();
//
// A flag that tasks can wait for. set() raises it and wakes every waiting task; tasks that wait
// while it is set return at once; clear() lowers it again. set() and clear() may be called from any
// thread, a foreign one included. A waiter woken by set() returns even if clear() follows before it
// runs (as in asyncio: the wake-up already happened).
//
// Costs: wait() on a set event is one load; set() and clear() take a spinlock for the queue (set()
// wakes the waiters after dropping it). The waiter node lives in the awaiter; nothing allocates.
//
// Cancellation: wait() is a cancellation point when it suspends. A waiter cancelled before it
// queues or while queued leaves with cancelled_error. A waiter cancelled after set() woke it but
// before it resumed also throws cancelled_error: an event grants nothing that could leak, and the
// other waiters were woken by the same set().
//
// Invariant: waiters are queued only while the flag is clear. set() raises the flag and takes the
// whole queue under the queue's lock; a waiter checks the flag and queues under the same lock.
#pragma once

#include <atomic>
#include <coroutine>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

class event {
 public:
  class wait_awaiter;

  event() = default;
  explicit event(bool initially_set) noexcept : set_(initially_set) {}
  // Requires: no task waits.
  ~event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  // Raises the flag and wakes every waiting task. Any thread.
  WEFT_API void set() noexcept;

  // Lowers the flag. Any thread.
  WEFT_API void clear() noexcept;

  // Ordering: acquire pairs with set()'s release store: a caller that sees the flag up sees
  // what the setter did before set().
  [[nodiscard]] bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }

  // Waits until the flag is raised (returns at once if it is).
  [[nodiscard]] wait_awaiter wait() noexcept;

 private:
  std::atomic<bool> set_{false};
  detail::wait_queue queue_;
};

// The awaiter of event::wait(). A cancellation point while it waits.
class [[nodiscard]] event::wait_awaiter : private detail::queued_wait {
 public:
  explicit wait_awaiter(event& e) noexcept : queued_wait(&e.queue_), event_(&e) {}
  wait_awaiter(const wait_awaiter&) = delete;
  wait_awaiter& operator=(const wait_awaiter&) = delete;

  bool await_ready() noexcept {
    if (!event_->is_set()) return false;
    node_.state = detail::node_state::granted;
    return true;
  }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    return suspend_in_queue(self, detail::wait_kind::event_wait, &grant_or_queue, this);
  }

  void await_resume() {
    finish();  // withdraws the hook; throws a pending cancellation (even after a wake-up)
    if (node_.state != detail::node_state::granted) throw cancelled_error();
  }

 private:
  // Under the queue's lock (suspend_in_queue's decision): granted if the flag is up, else queued.
  WEFT_API static bool grant_or_queue(void* self) noexcept;

  event* event_;
};

inline event::wait_awaiter event::wait() noexcept { return wait_awaiter(*this); }

}  // namespace weft
