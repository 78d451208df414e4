// primitives/barrier.cpp: weft::barrier's paths that take the queue's lock: arrivals, the round's
// completion and its hand-over, reset and abort (the protocol and its invariants are in
// <weft/primitives/barrier.hpp>).
#include <weft/primitives/barrier.hpp>

#include "wait_list.hpp"

namespace weft {

std::size_t barrier::n_waiting() const noexcept {
  detail::queue_lock_guard lock(queue_);
  return queue_.size;
}

// Under the lock: unlinks the first `count` queued tasks, granted with indices 0 .. count - 1,
// onto `woken` (the last one granted is its head).
void barrier::grant_round(std::size_t count, detail::wait_node*& woken) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    auto* granted = static_cast<node*>(detail::grant_front(queue_, woken));
    granted->index = i;
    granted->how = outcome::released;
  }
}

// Under the lock: unlinks every queued task, granted with `how`, onto `woken`.
void barrier::grant_all(outcome how, detail::wait_node*& woken) noexcept {
  while (auto* granted = static_cast<node*>(detail::grant_front(queue_, woken)))
    granted->how = how;
}

void barrier::break_waiters(bool stays_broken, outcome how) noexcept {
  detail::wait_node* woken = nullptr;
  {
    detail::queue_lock_guard lock(queue_);
    // Ordering: relaxed, under the lock, which orders it for every arrival (see broken()).
    broken_.store(stays_broken, std::memory_order_relaxed);
    grant_all(how, woken);
  }
  detail::wake_all(woken);
}

bool barrier::wait_awaiter::arrive(void* self) noexcept {
  auto* awaiter = static_cast<wait_awaiter*>(self);
  if (awaiter->barrier_->broken_.load(std::memory_order_relaxed)) {
    awaiter->grant_self(outcome::broken);
    return false;
  }
  if (awaiter->barrier_->completing_ || awaiter->queue_->size + 1 < awaiter->barrier_->parties_) {
    detail::push_back(*awaiter->queue_, &awaiter->node_);
    // Safety: once the queue's lock is released the last arrival, a reset or an abort can
    // grant the node and resume the task elsewhere; nothing below touches *this.
    return true;
  }
  // This arrival completes the round: take the others out of the queue, granted, in the same
  // critical section (they are woken after the lock is dropped, by complete_round).
  awaiter->barrier_->grant_round(awaiter->barrier_->parties_ - 1, awaiter->node_.round);
  awaiter->node_.index = awaiter->barrier_->parties_ - 1;
  awaiter->grant_self(outcome::completes_round);
  awaiter->barrier_->completing_ = static_cast<bool>(awaiter->barrier_->completion_);
  return false;
}

std::exception_ptr barrier::complete_round(detail::wait_node* round) noexcept {
  if (!completion_) {
    // No completing_ state was entered: the next round has been filling all along.
    detail::wake_all(round);
    return nullptr;
  }
  std::exception_ptr error;
  try {
    completion_();
  } catch (...) {
    error = std::current_exception();
  }
  detail::wait_node* next = nullptr;  // the tasks to wake besides `round`
  {
    detail::queue_lock_guard lock(queue_);
    if (error) {
      // The round's other tasks are unlinked and granted, and only this task touches them until
      // they are woken: they throw broken_barrier instead of returning.
      for (detail::wait_node* n = round; n != nullptr; n = n->links.next)
        static_cast<node*>(n)->how = outcome::broken;
      broken_.store(true, std::memory_order_relaxed);  // under the lock, see broken()
      grant_all(outcome::broken, next);
      completing_ = false;
    } else if (!broken_.load(std::memory_order_relaxed) && queue_.size >= parties_) {
      // The next round filled during the completion; its last arriver is queued like the others
      // (arrivals only queue while completing_). It becomes the completer, completing_ stays.
      detail::wait_node* next_round = nullptr;
      grant_round(parties_ - 1, next_round);
      auto* last = static_cast<node*>(detail::grant_front(queue_, next));
      last->index = parties_ - 1;
      last->how = outcome::completes_round;
      last->round = next_round;
    } else {
      completing_ = false;
    }
  }
  // Ordering: the completion's effects and the grants above reach each woken task through its
  // wake-up (run-queue release/acquire); the round's arrivals reached this task through the lock.
  detail::wake_all(round);
  detail::wake_all(next);
  return error;
}

}  // namespace weft
