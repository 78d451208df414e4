// scheduler/parker.cpp: the futex behind parker (see parker.hpp).
#include "parker.hpp"

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
    if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire)) return;
    // Spurious wake-up (EINTR or a stale wake): still parked.
  }
}

void parker::unpark() noexcept {
  // Ordering: release, acquired by park() (model-checked: mutant parker_unpark_release).
  if (state_.exchange(notified, WEFT_ORDER(parker_unpark_release, std::memory_order_release,
                                           std::memory_order_relaxed)) == parked) {
    futex_wake_one(&state_);
  }
}

}  // namespace weft::detail
