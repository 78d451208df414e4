// net/file_uring.hpp: the io_uring backend of weft::file: one ring per runtime and the awaiter of
// one operation on it (file_uring.cpp has the ring).
//
// An operation (uring_op) is allocated with the buffer the kernel reads into or writes from, and
// is reference counted: the awaiter holds one reference, the ring another from submission until
// the operation's completion (CQE) has been reaped. So a cancelled read, whose task has moved on
// (and may have freed its own buffer), leaves the kernel writing into memory that is still the
// operation's, and the operation is freed only when the kernel has said it is done with it.
//
// Who resumes the task, decided on uring_op::state by compare-and-swap:
//   idle --submit--> in_flight --reap--> completed        the reaper wakes the task (or, when
//                                                         the submitting call reaps its own
//                                                         completion, it does not suspend)
//   idle --cancel--> refused                              the submit sees it and does not submit
//   in_flight --cancel--> cancelled                       the canceller wakes the task, asks the
//                                                         kernel to cancel (best effort), and the
//                                                         reap later only drops the reference
// Exactly one transition leaves idle and one leaves in_flight, so the task is resumed once.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>

#include "file_state.hpp"

namespace weft::detail {

class uring_ring;

enum class uring_op_kind : unsigned char { read, write, fsync };

struct uring_op {
  enum state_type : unsigned char { idle, in_flight, completed, cancelled, refused };

  uring_op_kind kind = uring_op_kind::read;
  // Ordering: every transition is an acq_rel CAS or exchange; the reaper's release (completed)
  // publishes `result` to the task's acquire in await_resume, and the canceller's CAS makes the
  // reaper see `cancelled` so that it does not wake the task a second time.
  std::atomic<state_type> state{idle};
  // Two owners: the awaiter and the ring (from a successful submit to the reap of its CQE).
  // Ordering: acq_rel decrement, the usual shared ownership: the last owner sees every write the
  // other made (the kernel's writes into `data` are ordered by the CQE's acquire in liburing).
  std::atomic<int> refs{1};
  std::int32_t result = 0;           // the CQE's res: bytes or -errno; written by the reaper
  std::coroutine_handle<> waiter;    // set before submission
  runtime_core* home = nullptr;      // the waiting task's runtime (null: the ring's), idem
  std::shared_ptr<file_state> file;  // keeps the descriptor open while the kernel uses it
  std::uint64_t offset = 0;
  std::uint32_t size = 0;  // bytes of data
  char* data = nullptr;    // `size` bytes owned by this op (allocated with it)

  static uring_op* make(uring_op_kind kind, std::shared_ptr<file_state> file, std::uint32_t size,
                        std::uint64_t offset);
  static void release(uring_op* op) noexcept;
};

// The ring of the calling worker's runtime, created on first use. Throws file_error (naming
// `path`) if io_uring cannot be used.
uring_ring& ring_of_calling_runtime(const std::string& path);

// Submits `op`, holding the ring's reference from then on. Returns in_flight (the task must
// suspend), completed (the completion was reaped at once), or refused (a cancellation came
// first; nothing was submitted). Throws file_error if the ring refuses the submission.
uring_op::state_type uring_submit(uring_ring& ring, uring_op* op);
// For a cancellation: in_flight -> cancelled (true: the caller wakes the task) and a best-effort
// IORING_OP_ASYNC_CANCEL; idle -> refused (false: the coming submit refuses).
bool uring_cancel(uring_ring& ring, uring_op* op) noexcept;

// co_await uring_wait{ring, op}: the CQE's res (bytes or -errno) of `op`, which the caller keeps
// owning (one reference). A cancellation point.
class [[nodiscard]] uring_wait : private cancellable_wait {
 public:
  uring_wait(uring_ring& ring, uring_op* op) noexcept : ring_(ring), op_(op) {}
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) {
    on_cancel = &cancel_op;
    op_->waiter = self;  // before begin() publishes the hook: on_cancel may wake it
    if (begin(root_of(self))) return false;
    op_->home = root() != nullptr ? root()->runtime() : nullptr;
    uring_op::state_type state;
    try {
      state = uring_submit(ring_, op_);
    } catch (...) {
      abandon();
      throw;
    }
    // Nothing here may touch *this once the op is in flight: the reaper (or a canceller) may
    // resume the task on another worker at once.
    switch (state) {
      case uring_op::in_flight:
        return true;
      case uring_op::refused:
        mark_cancelled();
        return false;
      default:
        abandon();  // completed inline
        // A read the kernel serves from its page cache completes here, without suspending. A
        // task reading in a loop would then keep its worker for good: no other task there runs,
        // and neither does the worker's service between tasks (runtime::shutdown's cancellation
        // is served there; test_file's "destroying the runtime with reads in flight" hung on
        // it). Once its budget is spent it yields, as a join of a finished task does
        // (join_handle.hpp); the result waits in `op_`.
        if (budget_exhausted()) {
          schedule_yield(self);
          return true;
        }
        return false;
    }
  }
  std::int32_t await_resume() {
    finish();  // cancelled_error if cancelled (the op stays with the ring until its CQE)
    // Ordering: acquire pairs with the reaper's acq_rel exchange to `completed`.
    (void)op_->state.load(std::memory_order_acquire);
    return op_->result;
  }

 private:
  static void cancel_op(cancel_hook* hook) noexcept {
    auto* self = static_cast<uring_wait*>(static_cast<cancellable_wait*>(hook));
    if (uring_cancel(self->ring_, self->op_)) {
      self->mark_cancelled();
      wake(self->root()->runtime(), self->op_->waiter);
    }
  }

  uring_ring& ring_;
  uring_op* op_;
};

}  // namespace weft::detail
