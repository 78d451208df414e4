// scheduler/parker.cpp: the futex behind parker (see parker.hpp).
#include "parker.hpp"

#include <unistd.h>

#ifndef WEFT_MODEL_CHECK
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace weft::detail {

#ifdef WEFT_MODEL_CHECK
// The model checker's futex: a blocking operation that only a wake on the same word ends.
void futex_wait(atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  model::futex::wait(word, expected);
}
void futex_wake_one(atomic<std::uint32_t>* word) noexcept { model::futex::wake_one(word); }
void futex_wake_all(atomic<std::uint32_t>* word) noexcept { model::futex::wake_all(word); }
#else
namespace {
long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op | FUTEX_PRIVATE_FLAG,
                   value, nullptr, nullptr, 0);
}
}  // namespace

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  // Returns on a wake, on EAGAIN (the word already changed) and on EINTR; callers loop.
  futex(word, FUTEX_WAIT, expected);
}

void futex_wake_one(std::atomic<std::uint32_t>* word) noexcept { futex(word, FUTEX_WAKE, 1); }

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  futex(word, FUTEX_WAKE, 0x7fffffff);
}
#endif

void parker::park() noexcept {
  // Ordering: acquire on every transition out of `notified` pairs with unpark()'s release, so the
  // parked thread sees whatever the unparking thread published before unparking.
  std::uint32_t expected = notified;
  if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire)) return;
  expected = empty;
  if (!state_.compare_exchange_strong(expected, parked, std::memory_order_acquire)) {
    // Only unpark() changes an `empty` state, and it writes `notified`.
    state_.store(empty, std::memory_order_relaxed);
    return;
  }
  for (;;) {
    futex_wait(&state_, parked);
    expected = notified;
    // Ordering: acquire pairs with unpark()'s release (the argument at the top of park()).
    if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire)) return;
    // Spurious wake-up (EINTR or a stale wake): still parked.
  }
}

void parker::unpark() noexcept {
  // Ordering: release, acquired by park() (model-checked: mutant parker_unpark_release), and by
  // driving_notified()/end_driving() for a driving worker.
  const std::uint32_t before = state_.exchange(
      notified,
      WEFT_ORDER(parker_unpark_release, std::memory_order_release, std::memory_order_relaxed));
  if (before == parked) {
    futex_wake_one(&state_);
  } else if (before == driving) {
    // The owner sleeps (or is about to) in epoll_wait as the I/O driver: the eventfd ends it. A
    // full counter (EAGAIN) already means "wake up".
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(driver_wake_fd_, &one, sizeof one);
  }
}

bool parker::begin_driving() noexcept {
  std::uint32_t expected = empty;
  // Ordering: relaxed on success, nothing is read through it (the driver's own re-check of the
  // queues happened before, under idle.hpp's protocol); the exchange in unpark() that follows
  // this CAS in the word's modification order sees `driving` and writes the eventfd. On failure
  // the state is `notified` (only unpark() changes an empty state): consume it with acquire,
  // as park() does.
  if (state_.compare_exchange_strong(expected, driving, std::memory_order_relaxed,
                                     std::memory_order_acquire)) {
    return true;
  }
  state_.store(empty, std::memory_order_relaxed);
  return false;
}

bool parker::driving_notified() const noexcept {
  // Ordering: acquire pairs with unpark()'s release, as park().
  return state_.load(std::memory_order_acquire) == notified;
}

void parker::end_driving() noexcept {
  // Ordering: acquire, as park() returning: if unpark() ran, what it published is visible.
  state_.exchange(empty, std::memory_order_acquire);
}

}  // namespace weft::detail
