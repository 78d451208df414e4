// tests/model/test_model_cancel.cpp: the cancellation hand-off of a queued wait under the model
// checker. Real code: task_header's publish_hook / withdraw_hook / take_pending_cancel
// (weft/scheduler/detail/task_header.hpp), cancellable_wait::begin, and wait_queue's node states
// and cancel_wait with its spinlock (weft/primitives/detail/wait_queue.hpp, its out-of-line part
// primitives/wait_queue.cpp and list operations primitives/wait_list.hpp, compiled in here, and
// weft/scheduler/detail/spinlock.hpp). Restated here, because their home needs the whole runtime:
// the canceller (request_cancel in scheduler/runtime.cpp, copied step for step below; keep them in
// step), a primitive's await_suspend (begin, then enqueue_or_grant: queue under the lock unless
// the node was marked cancelled) and await_resume (withdraw the hook, take the pending
// cancellation), and wake(), which here counts.
//
// The property: a waiter that suspended is woken exactly once, by the releaser that granted it or
// by the canceller that unqueued it; a waiter that nobody wakes spins for ever on `woken` and the
// checker reports the deadlock.
#include <doctest/doctest.h>

#include <coroutine>
#include <cstdint>

#include <weft/primitives/detail/wait_queue.hpp>

#include "../../primitives/wait_list.hpp"
#include "model_checker.hpp"
#include "mutation.hpp"

namespace model = weft::model;
using weft::detail::cancel_hook;
using weft::detail::node_state;
using weft::detail::task_header;
using weft::detail::wait_node;
using weft::detail::wait_queue;
using weft_model_test::scenario;

// The model tests do not link libweft, where cancelled_error's out-of-line members (its key
// function, the destructor, and what()) live; finish() throws one, so this test defines them. The
// cancellations here carry no message (scheduler/cancel_message.cpp keeps those).
weft::cancelled_error::~cancelled_error() = default;
const char* weft::cancelled_error::what() const noexcept { return "weft: the task was cancelled"; }
weft::detail::cancel_message* weft::detail::take_cancel_message_of(task_header*) noexcept {
  return nullptr;  // no cancel(message) here: cancel_has_message is never set
}
void weft::detail::release_cancel_message(cancel_message*) noexcept {}

namespace {

model::atomic<int>* wakes = nullptr;  // the current execution's count of wake() calls

// A primitive's awaiter reduced to the base every primitive shares.
class waiter : public weft::detail::queued_wait {
 public:
  explicit waiter(wait_queue* queue) : queued_wait(queue) {}

  enum class outcome { not_suspended, woken_granted, woken_cancelled };

  // await_suspend of a primitive: false if the wait must not suspend.
  bool suspend(task_header* root) {
    if (begin(root)) return false;
    return weft::detail::enqueue_or_grant(queue_, &node_, &always_queue, this);
  }

  // The decision of a primitive that always waits (under the queue's lock).
  static bool always_queue(void* self) noexcept {
    auto* w = static_cast<waiter*>(self);
    weft::detail::push_back(*w->queue_, &w->node_);
    return true;
  }

  // await_resume, after the wake-up (or at once when suspend refused): the real finish(), whose
  // cancelled_error is not the point here. (It must be finish(): it also clears the awaiter's
  // root, so that its destructor, which withdraws a hook still published when a frame is
  // destroyed at shutdown, does not withdraw a second time and wait for a `finished` nobody
  // sets; a hand-written withdraw here deadlocked in the checker.)
  outcome resume(bool suspended) {
    try {
      finish();
    } catch (const weft::cancelled_error&) {
    }
    if (!suspended) return outcome::not_suspended;
    return node_.state == node_state::granted ? outcome::woken_granted : outcome::woken_cancelled;
  }
};

// scheduler/runtime.cpp, request_cancel.
void model_request_cancel(task_header* task) noexcept {
  std::uint32_t state = task->cancel_word().load(std::memory_order_relaxed);
  while (!task->cancel_word().compare_exchange_weak(
      state, (state | task_header::cancel_pending) + task_header::cancel_request,
      std::memory_order_seq_cst, std::memory_order_relaxed)) {
  }
  if (cancel_hook* hook = task->hook_slot().exchange(nullptr, std::memory_order_seq_cst)) {
    hook->on_cancel(hook);
    hook->finished.store(true, std::memory_order_release);
  }
}

// A primitive's release: grants the first waiter under the lock and wakes it after.
void grant_one(wait_queue& q) {
  wait_node* woken = nullptr;
  {
    weft::detail::queue_lock_guard lock(q);
    weft::detail::grant_front(q, woken);
  }
  weft::detail::wake_all(woken);
}

model::result explore(const std::function<void()>& body) {
  model::options opts;
  opts.preemption_bound = 2;
  return model::explore(opts, body);
}

// The waiter suspends while another thread cancels it.
void cancel_against_wait(bool with_releaser) {
  model::atomic<int> wake_count{0};
  wakes = &wake_count;
  task_header root;
  wait_queue q;
  waiter w(&q);
  const int canceller = model::spawn([&] { model_request_cancel(&root); });
  int releaser = -1;
  if (with_releaser) releaser = model::spawn([&] { grant_one(q); });
  const bool suspended = w.suspend(&root);
  if (suspended) {
    while (wake_count.load(std::memory_order_acquire) == 0) {
    }
  }
  const waiter::outcome o = w.resume(suspended);
  model::join(canceller);
  if (releaser >= 0) model::join(releaser);
  model::check(wake_count.load(std::memory_order_relaxed) == (suspended ? 1 : 0),
               "a waiter was woken twice, or woken without having suspended");
  if (!with_releaser) {
    model::check(o != waiter::outcome::woken_granted, "a grant nobody made");
  }
  model::check(weft::detail::queue_empty(q) || !suspended || o == waiter::outcome::woken_granted ||
                   o == waiter::outcome::woken_cancelled,
               "a woken waiter is still queued");
  model::check(root.hook_slot().load(std::memory_order_relaxed) == nullptr,
               "a hook is still published after the wait ended");
}

const std::initializer_list<scenario> scenarios = {
    {"cancel: a cancellation against a waiter suspending",
     [] { return explore([] { cancel_against_wait(false); }); }},
    {"cancel: a cancellation and a grant against a waiter suspending",
     [] { return explore([] { cancel_against_wait(true); }); }},
};

}  // namespace

// The runtime's functions that the real headers call; the model test links no runtime.
namespace weft::detail {
void wake(runtime_core*, std::coroutine_handle<>) noexcept {
  wakes->fetch_add(1, std::memory_order_release);
}
void arm_lazy_timeout(task_header*) noexcept {
  model::check(false, "no timeout is armed in these scenarios");
}
// The scenarios' root has no frame, which take_pending_cancel reads as a fork_join child; there
// is no forker here whose cancellation could be connected, so there is nothing to do.
void arm_fork_scope(task_header*) noexcept {}
}  // namespace weft::detail

TEST_SUITE("model") {
#ifndef WEFT_MODEL_MUTANT
  TEST_CASE("model cancel: a queued waiter is woken exactly once whoever cancels or grants") {
    weft_model_test::require_all_pass(scenarios);
  }
#else
  TEST_CASE("model cancel: the checker catches the mutant " WEFT_MODEL_MUTANT_NAME) {
    weft_model_test::require_some_failure(scenarios);
  }
#endif
}
