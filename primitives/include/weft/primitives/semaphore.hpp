// weft/primitives/semaphore.hpp: weft::semaphore and weft::bounded_semaphore, Python's
// asyncio.Semaphore and asyncio.BoundedSemaphore.
//
//   weft::semaphore limit(3);                 // at most 3 fetches at a time
//   weft::task<page> fetch(std::string url) {
//     auto permit = co_await limit.acquire(); // waits (suspending the task) while 3 are out
//     co_return co_await http_get(url);
//   }                                         // the permit goes back here
//
// A counting semaphore for tasks. acquire() takes one permit, waiting in FIFO order while none is
// available; the returned permit gives it back on destruction (or earlier with permit.release()).
// try_acquire() never waits. release(n) adds n permits from any thread, a foreign one included
// (it cannot co_await, but it can release, or try_acquire and release).
//
// Fairness: strictly FIFO. A release hands its permits directly to the first waiters, so a later
// acquire() or try_acquire() never overtakes a queued waiter.
//
// Misuse is refused at the call, with std::logic_error, and the throwing release changes nothing:
//   - bounded_semaphore::release(n) gives back permits taken out of permit objects with
//     permit::detach(); releasing more than were detached (a permit released twice, a release
//     without an acquire, an extra release while a permit object still holds its permit) throws,
//     naming the limit, as Python's BoundedSemaphore raises ValueError. Before, an extra release
//     while a permit was held went through, and that permit's destructor threw later (terminate);
//   - release(n) that would take the count beyond max_count (2^63 - 1, release(SIZE_MAX), say)
//     throws instead of wrapping; so does a constructor asked for more than max_count.
// A permit's destructor (and permit::release) never throws: a permit object exists only for a
// permit taken, so a bounded semaphore has room for it; an unbounded one whose count was raised
// to max_count meanwhile stays at max_count (one permit of 2^63 - 1 is dropped, not wrapped).
//
// Costs: uncontended acquire and release are one CAS each, with no suspension and no allocation;
// the waiter node lives in the awaiter. The slow paths hold a spinlock for a few pointer moves.
//
// Cancellation: acquire() is a cancellation point when it has to wait. Cancelled before it queues
// or while queued, the task throws cancelled_error holding no permit and the waiters behind it
// move up. Cancelled after a release granted it a permit but before it resumed, it passes the
// permit on (release(1): to the next waiter, or back to the count) and throws cancelled_error
// (reliability rule 3). An acquire that finds a permit at once does not suspend and does not
// deliver a pending cancellation, as asyncio's Semaphore.acquire.
//
// State word `count_`: n >= 0 permits available and no waiter queued, or `contended` (-1): no
// permit available, waiters may be queued. Invariant: waiters are queued only while the count is
// contended, and it leaves contended only under the queue's lock, by a release that found the queue
// empty after granting. So a fast-path CAS on a non-negative count never strands a waiter, and a
// positive count means nobody waits (FIFO: no acquire can overtake).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/primitives/detail/wait_queue.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

class semaphore {
 public:
  class permit;
  class acquire_awaiter;

  // The largest count (the state word is signed). Throws std::invalid_argument above it.
  static constexpr std::size_t max_count = std::numeric_limits<std::int64_t>::max();

  explicit semaphore(std::size_t initial) : semaphore(initial, unbounded) {}
  // Requires: no task waits.
  ~semaphore() = default;
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // Waits until a permit is available and takes it; the permit gives it back on destruction.
  [[nodiscard]] acquire_awaiter acquire() noexcept;

  // Takes a permit if one is available at once (never while waiters are queued).
  [[nodiscard]] std::optional<permit> try_acquire() noexcept;

  // Adds n permits: hands them to the first n waiters, the rest to the count. Any thread.
  // Throws std::logic_error, changing nothing, if the count would exceed max_count, and, for a
  // bounded_semaphore, if n is more than the permits detached from permit objects (see above).
  WEFT_API void release(std::size_t n = 1);

  // True if acquire() would have to wait now: no permit is available (asyncio's
  // Semaphore.locked()). A snapshot.
  [[nodiscard]] bool locked() const noexcept { return available() == 0; }

  // Permits available now (0 while tasks wait). A snapshot.
  [[nodiscard]] std::size_t available() const noexcept {
    const std::int64_t count = count_.load(std::memory_order_relaxed);
    return count < 0 ? 0 : static_cast<std::size_t>(count);
  }

 protected:
  static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

  semaphore(std::size_t initial, std::size_t limit)
      : count_(static_cast<std::int64_t>(check_initial(initial))), limit_(limit) {}
  [[nodiscard]] std::size_t limit_value() const noexcept { return limit_; }

 private:
  static constexpr std::int64_t contended = -1;

  bool try_take() noexcept {
    std::int64_t count = count_.load(std::memory_order_relaxed);
    while (count > 0) {
      // Ordering: acquire pairs with the release that added the permit, so whatever the releaser
      // did before releasing happens before the new holder's work.
      if (count_.compare_exchange_weak(count, count - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  static std::size_t check_initial(std::size_t initial) {
    if (initial > max_count) {
      throw std::invalid_argument("weft::semaphore: an initial count of " +
                                  std::to_string(initial) + " exceeds max_count (2^63 - 1)");
    }
    return initial;
  }

  // A permit object's permit comes back (its destructor, permit::release, or a granted waiter
  // cancelled before it resumed). Never throws: see the file comment.
  void return_permit() noexcept { add_permits(1, true); }
  // The core of release: hands n permits to the first waiters and the rest to the count. With
  // `from_permit`, saturates at max_count; otherwise throws, changing nothing, where the count
  // would exceed it (n <= max_count is checked by the caller).
  void add_permits(std::size_t n, bool from_permit) noexcept(false);
  // add_permits' slow path (primitives/semaphore.cpp): the count is `contended`, so tasks may
  // wait; under the queue's lock, grants up to n of them and puts the rest in the count.
  WEFT_API void grant_waiters(std::size_t n, bool from_permit) noexcept(false);
  // bounded_semaphore: a permit object let go of its permit (permit::detach).
  void note_detached() noexcept {
    // Relaxed: a plain count of permits whose ownership went to the caller. The release that
    // gives one back is ordered after the detach by whatever handed the permit over (the same
    // thread, or a synchronization of the caller's), and coherence then shows it the increment.
    if (limit_ != unbounded) detached_.fetch_add(1, std::memory_order_relaxed);
  }

  [[noreturn]] WEFT_API void over_released(std::size_t n, std::size_t detached) const;
  [[noreturn]] WEFT_API void overflowed(std::size_t n) const;

  std::atomic<std::int64_t> count_;
  const std::size_t limit_;
  // bounded_semaphore only: permits detached from permit objects and not released yet, the only
  // ones release(n) may give back. Invariant (bounded): available() + permits held by permit
  // objects + detached_ + permits granted to waiters that have not resumed == limit_. So a
  // permit's own return never exceeds the limit, and release(n) never makes it do so.
  std::atomic<std::size_t> detached_{0};
  detail::wait_queue queue_;
};

// One permit of a semaphore; released on destruction. Move-only; a moved-from permit holds nothing.
class semaphore::permit {
 public:
  permit() noexcept = default;
  permit(permit&& other) noexcept : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
  permit& operator=(permit&& other) noexcept {
    if (this != &other) {
      release();
      semaphore_ = std::exchange(other.semaphore_, nullptr);
    }
    return *this;
  }
  // Never throws: a permit only exists for a permit taken, so even a bounded semaphore has room.
  ~permit() { release(); }

  // Gives the permit back now. Does nothing if nothing is held. Never throws.
  void release() noexcept {
    if (semaphore_ != nullptr) std::exchange(semaphore_, nullptr)->return_permit();
  }
  [[nodiscard]] bool owns_permit() const noexcept { return semaphore_ != nullptr; }
  explicit operator bool() const noexcept { return owns_permit(); }
  // Lets go of the permit without releasing it: the caller gives it back with release() on the
  // semaphore (which a bounded_semaphore then accepts, once per detached permit).
  semaphore* detach() noexcept {
    semaphore* s = std::exchange(semaphore_, nullptr);
    if (s != nullptr) s->note_detached();
    return s;
  }

 private:
  friend class semaphore;
  explicit permit(semaphore* s) noexcept : semaphore_(s) {}

  semaphore* semaphore_ = nullptr;
};

// The awaiter of semaphore::acquire(). A cancellation point while it waits.
class [[nodiscard]] semaphore::acquire_awaiter : private detail::queued_wait {
 public:
  explicit acquire_awaiter(semaphore& s) noexcept : queued_wait(&s.queue_), semaphore_(&s) {}
  // Destroyed while waiting (runtime shutdown): a permit granted and never resumed with goes to
  // the next waiter instead of being lost.
  ~acquire_awaiter() {
    if (leave_queue() == detail::node_state::granted) semaphore_->release(1);
  }
  acquire_awaiter(const acquire_awaiter&) = delete;
  acquire_awaiter& operator=(const acquire_awaiter&) = delete;

  bool await_ready() noexcept {
    if (!semaphore_->try_take()) return false;
    node_.state = detail::node_state::granted;
    return true;
  }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    return suspend_in_queue(self, detail::wait_kind::semaphore_acquire, &take_or_queue, this);
  }

  permit await_resume() {
    if (node_.state != detail::node_state::granted) {
      finish();                 // withdraws the hook; throws the pending cancellation
      throw cancelled_error();  // unlinked by a cancellation whose request was taken back
    }
    try {
      finish();
    } catch (...) {
      semaphore_->return_permit();  // granted, but cancelled before it resumed: pass it on
      throw;
    }
    return permit(semaphore_);
  }

 private:
  // Under the queue's lock (suspend_in_queue's decision): takes a permit if one is free (false:
  // do not suspend), or marks the semaphore contended and links the node (true: suspend).
  WEFT_API static bool take_or_queue(void* self) noexcept;

  semaphore* semaphore_;
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept { return acquire_awaiter(*this); }

inline std::optional<semaphore::permit> semaphore::try_acquire() noexcept {
  if (!try_take()) return std::nullopt;
  return permit(this);
}

inline void semaphore::add_permits(std::size_t n, bool from_permit) noexcept(false) {
  constexpr auto max = static_cast<std::int64_t>(max_count);
  const auto amount = static_cast<std::int64_t>(n);  // n <= max_count (callers)
  std::int64_t count = count_.load(std::memory_order_relaxed);
  while (count >= 0) {
    std::int64_t next = count + (amount > max - count ? 0 : amount);
    if (amount > max - count) {
      if (!from_permit) overflowed(n);  // the count is unchanged
      next = max;                       // a permit's return saturates (file comment)
    }
    // Ordering: release publishes the releaser's work to the acquire CAS that takes the permit.
    if (count_.compare_exchange_weak(count, next, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  grant_waiters(n, from_permit);
}

// A semaphore that refuses to grow beyond its initial count (Python's BoundedSemaphore).
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::size_t initial) : semaphore(initial, initial) {}
  // The initial count, which the available permits never exceed.
  [[nodiscard]] std::size_t limit() const noexcept { return limit_value(); }
};

}  // namespace weft
