// weft/primitives/detail/queue_core.hpp: the buffer, the waiter lists and the awaiters that
// weft::queue and weft::channel share.
//
// A queue_core is a FIFO of items (a ring buffer, bounded by `maxsize` or unbounded) plus three
// FIFO lists of suspended tasks: getters (waiting while the buffer is empty), putters (waiting
// while it is full) and joiners (waiting until every item put was marked done). One short
// spinlock guards all of it; the lists are intrusive and their nodes live in the awaiters, that
// is in the waiting coroutines' frames, so waiting allocates nothing.
//
// Hand-off, not re-checking. A task that makes progress possible completes the waiter's
// operation itself, under the lock, before it wakes the waiter:
//   put with a getter waiting     the item goes straight into the first getter's slot
//   get with a putter waiting     the first putter's item moves into the freed place at the back
//   the last task_done            every joiner is released
//   shutdown                      every getter and putter is released with "shut down"
// A woken waiter therefore never races with newcomers for the item or the room it was woken for,
// which keeps FIFO order among waiters exact, and "woken" means "granted": the operation is
// already done when the task resumes.
//
// Invariants (under the lock):
//   getters non-empty  =>  the buffer is empty
//   putters non-empty  =>  the queue is bounded and the buffer holds maxsize items
//   a waiter's status is `waiting` exactly while it is linked into a list
//
// Cancellation rule (reliability.md rule 3): a waiter that was granted keeps its grant. If the
// cancellation arrives after the grant (the waiter was unlinked and its wake-up scheduled, but it
// has not resumed yet), the operation completes normally: the getter returns its item, the putter
// returns with its item in the queue, the joiner returns; the cancellation stays pending and is
// thrown at the task's next cancellation point. A waiter cancelled while still linked is unlinked
// and throws cancelled_error; it was granted nothing, so nothing is passed on and nothing is lost
// (a cancelled putter's item was never inserted, a cancelled getter never took one). A waiter
// cancelled before it linked itself is marked `cancelled` under the lock, and the registration
// then refuses.
//
// Ordering: every field here is guarded by the spinlock (acquire on lock, release on unlock),
// except a waiter's status and slot after it resumed: the granter wrote them under the lock
// before it called detail::wake, and the scheduler's queues publish the wake-up (release on push,
// acquire on pop), so the resumed task sees them. A concurrent on_cancel only reads the status
// under the lock and is waited for by withdraw_hook (acquire of `finished`) before await_resume
// reads the status.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/primitives/detail/ring_buffer.hpp>
#include <weft/scheduler/detail/intrusive_list.hpp>
#include <weft/scheduler/detail/spinlock.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::detail {

enum class wait_status : unsigned char {
  idle,       // not registered yet
  waiting,    // linked into a list
  granted,    // the operation was completed for the waiter (or at once)
  shut_down,  // released by shutdown / close without its operation
  cancelled,  // unlinked by a cancellation, or refused before it could register
};

// A suspended get, put or join: an intrusive node of one of the core's FIFO lists.
struct queue_waiter {
  list_links<queue_waiter> links;  // in one of the core's lists, or in a wake_list once granted
  std::coroutine_handle<> handle;
  runtime_core* runtime = nullptr;
  wait_status status = wait_status::idle;  // guarded by the core's lock (see the file comment)
  // Set by a core whose operation completed at once but lost a claim race to another thread on
  // the way (channel_core.hpp, "Contention"): the awaiter then yields before it resumes the task.
  // Written and read by the waiting task's own thread only.
  bool yield_after = false;
};

// FIFO of waiters; O(1) push, pop and removal of a cancelled waiter (intrusive_list.hpp).
using waiter_list = intrusive_list<queue_waiter, &queue_waiter::links>;

// Waiters granted under the lock, woken after it is released (waking pushes to a run queue and
// must not happen inside the spinlock). Reuses the waiters' `links.next`: a granted waiter is in
// no list (the list never reads an unlinked node, intrusive_list.hpp) and cannot resume before it
// is woken from here. Singly linked on purpose: it is only appended to and walked once.
class wake_list {
 public:
  wake_list() = default;
  wake_list(const wake_list&) = delete;
  wake_list& operator=(const wake_list&) = delete;
  ~wake_list() { wake_all(); }

  void add(queue_waiter* w) noexcept {
    w->links.next = nullptr;
    if (tail_ != nullptr) {
      tail_->links.next = w;
    } else {
      head_ = w;
    }
    tail_ = w;
  }
  // Inline only the test for an empty list (most operations wake nobody); the walk is out of
  // line (primitives/queue_core.cpp).
  void wake_all() noexcept {
    if (head_ == nullptr) return;
    queue_waiter* chain = head_;
    head_ = tail_ = nullptr;
    wake_chain(chain);
  }

 private:
  // Wakes `w` and the waiters linked behind it through `next`, in order.
  WEFT_API static void wake_chain(queue_waiter* w) noexcept;

  queue_waiter* head_ = nullptr;
  queue_waiter* tail_ = nullptr;
};

enum class try_result { done, would_block, shut_down };

// The item store of a queue_core: ring_buffer<T> (FIFO) by default; lifo_queue and
// priority_queue plug in their own (lifo_queue.hpp, priority_queue.hpp). A Store has push_back
// (the only member that may throw, with the strong guarantee), pop_front (the next item to hand
// out; noexcept), size, empty and swap; a push_back right after a pop_front must not allocate,
// since take_locked moves a waiting putter's item into the place just freed.
template <class T, class Store = ring_buffer<T>>
class queue_core {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::queue and weft::channel need an item type with a noexcept move constructor");

 public:
  // A get in progress: its node and the slot a putter fills when it hands an item over.
  struct get_waiter : queue_waiter {
    std::optional<T> item;
  };
  // A put in progress: its node and the item it waits to insert.
  struct put_waiter : queue_waiter {
    explicit put_waiter(T&& v) noexcept : value(std::move(v)) {}
    T value;
  };

  explicit queue_core(std::size_t maxsize) noexcept : maxsize_(maxsize) {}
  queue_core(const queue_core&) = delete;
  queue_core& operator=(const queue_core&) = delete;

  [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }
  std::size_t size() noexcept {
    lock_.lock();
    const std::size_t n = items_.size();
    lock_.unlock();
    return n;
  }
  bool is_shut_down() noexcept {
    lock_.lock();
    const bool shut = shut_;
    lock_.unlock();
    return shut;
  }

  // put_nowait / try_send. Moves from `value` only when it returns done.
  try_result try_put(T& value) {
    wake_list wakes;
    lock_.lock();
    try_result r = try_result::done;
    if (shut_) {
      r = try_result::shut_down;
    } else if (!has_room_locked()) {
      r = try_result::would_block;
    } else {
      try {
        insert_locked(value, wakes);
      } catch (...) {
        lock_.unlock();
        throw;
      }
    }
    lock_.unlock();
    return r;
  }

  // get_nowait / try_receive.
  try_result try_get(std::optional<T>& out) noexcept {
    wake_list wakes;
    lock_.lock();
    try_result r = try_result::done;
    if (!items_.empty()) {
      out.emplace(take_locked(wakes));
    } else {
      r = shut_ ? try_result::shut_down : try_result::would_block;
    }
    lock_.unlock();
    return r;
  }

  // For the put awaiter: completes the put now if it can (status granted or shut_down) or, if
  // `enqueue`, links the waiter. Returns false if the waiter was linked (it must suspend).
  bool put_or_enqueue(put_waiter* w, bool enqueue) {
    wake_list wakes;
    lock_.lock();
    if (w->status == wait_status::cancelled) {
      lock_.unlock();
      return true;
    }
    if (shut_) {
      w->status = wait_status::shut_down;
    } else if (has_room_locked()) {
      try {
        insert_locked(w->value, wakes);
      } catch (...) {
        lock_.unlock();
        throw;
      }
      w->status = wait_status::granted;
    } else if (enqueue) {
      w->status = wait_status::waiting;
      putters_.push_back(w);
      lock_.unlock();
      return false;
    }
    lock_.unlock();
    return w->status != wait_status::idle;
  }

  // For the get awaiter, as put_or_enqueue.
  bool get_or_enqueue(get_waiter* w, bool enqueue) noexcept {
    wake_list wakes;
    lock_.lock();
    if (w->status == wait_status::cancelled) {
      lock_.unlock();
      return true;
    }
    if (!items_.empty()) {
      w->item.emplace(take_locked(wakes));
      w->status = wait_status::granted;
    } else if (shut_) {
      w->status = wait_status::shut_down;
    } else if (enqueue) {
      w->status = wait_status::waiting;
      getters_.push_back(w);
      lock_.unlock();
      return false;
    }
    lock_.unlock();
    return w->status != wait_status::idle;
  }

  // For the join awaiter, as put_or_enqueue.
  bool join_or_enqueue(queue_waiter* w, bool enqueue) noexcept {
    lock_.lock();
    if (w->status == wait_status::cancelled) {
      lock_.unlock();
      return true;
    }
    if (unfinished_ == 0) {
      w->status = wait_status::granted;
    } else if (enqueue) {
      w->status = wait_status::waiting;
      joiners_.push_back(w);
      lock_.unlock();
      return false;
    }
    lock_.unlock();
    return w->status != wait_status::idle;
  }

  // on_cancel of every awaiter: takes back a linked waiter (true: the caller wakes it) or makes
  // its coming registration refuse; a granted or released waiter keeps what it got.
  bool cancel(queue_waiter* w, waiter_list queue_core::*list) noexcept {
    lock_.lock();
    bool take_back = false;
    if (w->status == wait_status::waiting) {
      (this->*list).remove(w);
      w->status = wait_status::cancelled;
      take_back = true;
    } else if (w->status == wait_status::idle) {
      w->status = wait_status::cancelled;
    }
    lock_.unlock();
    return take_back;
  }

  void task_done() {
    wake_list wakes;
    lock_.lock();
    if (unfinished_ == 0) {
      lock_.unlock();
      throw std::logic_error("weft::queue::task_done() called more times than there were items");
    }
    if (--unfinished_ == 0) release_joiners_locked(wakes);
    lock_.unlock();
  }

  std::size_t unfinished() noexcept {
    lock_.lock();
    const std::size_t n = unfinished_;
    lock_.unlock();
    return n;
  }

  void shutdown(bool immediate) noexcept {
    Store dropped;  // destroyed after the lock is released
    wake_list wakes;
    lock_.lock();
    shut_ = true;
    if (immediate) {
      const std::size_t n = items_.size();
      items_.swap(dropped);
      unfinished_ -= n < unfinished_ ? n : unfinished_;
      if (unfinished_ == 0) release_joiners_locked(wakes);
    }
    release_all_locked(getters_, wakes);
    release_all_locked(putters_, wakes);
    lock_.unlock();
  }

  waiter_list getters_;
  waiter_list putters_;
  waiter_list joiners_;

 private:
  [[nodiscard]] bool has_room_locked() const noexcept {
    return maxsize_ == 0 || items_.size() < maxsize_;
  }

  // Requires: has_room_locked(). Strong guarantee (only the buffer's growth can throw).
  void insert_locked(T& value, wake_list& wakes) {
    if (!getters_.empty()) {
      auto* g = static_cast<get_waiter*>(getters_.pop_front());
      g->item.emplace(std::move(value));
      g->status = wait_status::granted;
      wakes.add(g);
    } else {
      items_.push_back(std::move(value));
    }
    ++unfinished_;
  }

  // Requires: !items_.empty().
  T take_locked(wake_list& wakes) noexcept {
    T item = items_.pop_front();
    if (!putters_.empty()) {
      // The freed place goes to the first putter; no growth, since the buffer just shrank.
      auto* p = static_cast<put_waiter*>(putters_.pop_front());
      items_.push_back(std::move(p->value));
      ++unfinished_;
      p->status = wait_status::granted;
      wakes.add(p);
    }
    return item;
  }

  void release_joiners_locked(wake_list& wakes) noexcept {
    while (!joiners_.empty()) {
      queue_waiter* j = joiners_.pop_front();
      j->status = wait_status::granted;
      wakes.add(j);
    }
  }

  static void release_all_locked(waiter_list& list, wake_list& wakes) noexcept {
    while (!list.empty()) {
      queue_waiter* w = list.pop_front();
      w->status = wait_status::shut_down;
      wakes.add(w);
    }
  }

  spinlock lock_;
  Store items_;
  const std::size_t maxsize_;  // 0: unbounded
  std::size_t unfinished_ = 0;
  bool shut_ = false;
};

// The common shape of the three awaiters: derived from cancellable_wait (the hook) and from the
// core's node type. `Node` is get_waiter, put_waiter or queue_waiter; `Derived` supplies
// try_now(core, enqueue), the list a waiter of its kind sits in and the wait_kind that
// runtime::dump shows for it. `Core` is queue_core, or another core with the same waiter
// interface (channel_core.hpp: get_or_enqueue, put_or_enqueue, cancel, getters_, putters_).
template <class T, class Node, class Derived, class Store = ring_buffer<T>,
          class Core = queue_core<T, Store>>
class queue_wait : protected cancellable_wait, protected Node {
 public:
  template <class... Args>
  explicit queue_wait(Core& core, Args&&... args) noexcept
      : Node(std::forward<Args>(args)...), core_(&core) {}
  queue_wait(const queue_wait&) = delete;
  queue_wait& operator=(const queue_wait&) = delete;
  // Destroyed while linked (runtime shutdown destroys a task where it waits; issue 10, bug 1):
  // leave the list, so the core never reaches a node of freed memory. The shutdown sweep has
  // usually unlinked it already through on_cancel. An item handed to a getter that never resumed
  // is destroyed with the getter (the task that was to receive it is gone).
  ~queue_wait() {
    if (this->handle) (void)core_->cancel(this->node(), Derived::list);
  }

  // The operation completes without waiting if it can: then it is not a cancellation point.
  // If the core asks for it (yield_after), the task still suspends once, behind the tasks ready
  // on its worker, with the operation already done: a yield, not a wait (no hook, no
  // cancellation point), and await_resume returns the operation's result as usual.
  bool await_ready() { return Derived::try_now(*core_, this->node(), false) && !this->yield_after; }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    if (this->yield_after) {  // completed in await_ready (status granted): only yield
      schedule_yield(self);
      return true;
    }
    require_worker("a weft::queue or weft::channel wait");
    on_cancel = &cancel_wait;
    if (begin(root_of(self), Derived::kind)) return false;  // a pending cancellation: do not wait
    this->handle = self;
    this->runtime = current_runtime_core();
    // Safety: once try_now linked the node, *this may be resumed on another worker and destroyed
    // at once; nothing below touches it. Everything was decided under the core's lock.
    return !Derived::try_now(*core_, this->node(), true);
  }

 protected:
  // For await_resume: true if the operation was granted (keeps a late cancellation pending),
  // false if released by shutdown; throws cancelled_error if cancelled.
  bool settle() {
    this->handle = nullptr;  // settled: the destructor has nothing to unlink
    if (this->status == wait_status::granted) {
      abandon();
      return true;
    }
    if (this->status == wait_status::shut_down) {
      abandon();
      return false;
    }
    finish();                 // withdraws the hook; throws cancelled_error (marked cancelled)
    throw cancelled_error();  // not reached
  }

  Node* node() noexcept { return this; }

 private:
  static void cancel_wait(cancel_hook* hook) noexcept {
    auto* self = static_cast<queue_wait*>(static_cast<cancellable_wait*>(hook));
    // Marking is harmless for a granted waiter: settle() then never reads the mark. Ordering:
    // the mark is read by finish() after withdraw_hook acquired `finished`.
    self->mark_cancelled();
    if (self->core_->cancel(self->node(), Derived::list)) {
      wake(runtime_of(self->root()), self->handle);  // set before the node was linked
    }
  }

  Core* core_;
};

// `co_await q.get()` / `co_await ch.receive()`. Resumes with the item; when released by a
// shutdown (close) without one, throws ShutError, or, if Optional, returns std::nullopt. `Kind`
// names the wait in runtime::dump.
template <class T, bool Optional, class ShutError, class Store = ring_buffer<T>,
          wait_kind Kind = wait_kind::queue_get, class Core = queue_core<T, Store>>
class get_awaiter
    : public queue_wait<T, typename Core::get_waiter,
                        get_awaiter<T, Optional, ShutError, Store, Kind, Core>, Store, Core> {
  using node_type = typename Core::get_waiter;
  using base = queue_wait<T, node_type, get_awaiter, Store, Core>;
  friend base;

 public:
  using result_type = std::conditional_t<Optional, std::optional<T>, T>;
  explicit get_awaiter(Core& core) noexcept : base(core) {}

  result_type await_resume() {
    if (this->settle()) return std::move(*this->item);
    if constexpr (Optional) {
      return std::nullopt;
    } else {
      throw ShutError();
    }
  }

 private:
  static bool try_now(Core& core, node_type* w, bool enqueue) {
    return core.get_or_enqueue(w, enqueue);
  }
  static constexpr waiter_list Core::*list = &Core::getters_;
  static constexpr wait_kind kind = Kind;
};

// `co_await q.put(v)` / `co_await ch.send(v)`. Holds the item until it is inserted; when
// released by a shutdown (close), or cancelled, before that, the item is destroyed with the
// awaiter and ShutError (cancelled_error) is thrown. `Kind` names the wait in runtime::dump.
template <class T, class ShutError, class Store = ring_buffer<T>,
          wait_kind Kind = wait_kind::queue_put, class Core = queue_core<T, Store>>
class put_awaiter : public queue_wait<T, typename Core::put_waiter,
                                      put_awaiter<T, ShutError, Store, Kind, Core>, Store, Core> {
  using node_type = typename Core::put_waiter;
  using base = queue_wait<T, node_type, put_awaiter, Store, Core>;
  friend base;

 public:
  put_awaiter(Core& core, T&& item) noexcept : base(core, std::move(item)) {}

  void await_resume() {
    if (!this->settle()) throw ShutError();
  }

 private:
  static bool try_now(Core& core, node_type* w, bool enqueue) {
    return core.put_or_enqueue(w, enqueue);
  }
  static constexpr waiter_list Core::*list = &Core::putters_;
  static constexpr wait_kind kind = Kind;
};

// `co_await q.join()`: resumes once every item put so far was marked done.
template <class T, class Store = ring_buffer<T>>
class join_awaiter : public queue_wait<T, queue_waiter, join_awaiter<T, Store>, Store> {
  using base = queue_wait<T, queue_waiter, join_awaiter, Store>;
  friend base;

 public:
  explicit join_awaiter(queue_core<T, Store>& core) noexcept : base(core) {}

  void await_resume() { (void)this->settle(); }  // never released by shutdown

 private:
  static bool try_now(queue_core<T, Store>& core, queue_waiter* w, bool enqueue) {
    return core.join_or_enqueue(w, enqueue);
  }
  static constexpr waiter_list queue_core<T, Store>::*list = &queue_core<T, Store>::joiners_;
  static constexpr wait_kind kind = wait_kind::queue_join;
};

}  // namespace weft::detail
