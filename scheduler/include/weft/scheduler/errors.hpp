// weft/scheduler/errors.hpp: the exceptions the scheduler throws.
#pragma once

#include <stdexcept>

#include <weft/scheduler/export.hpp>

namespace weft {

// Thrown when work is submitted to a runtime that is shutting down, and when a join_handle is
// awaited whose task was abandoned because its runtime shut down before the task finished.
class WEFT_API runtime_stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown at a cancellation point of a task that was cancelled (join_handle::cancel, a cancelled
// task group or gather, an expired timeout), and by awaiting a task that ended cancelled.
//
// Deliberately not derived from std::exception, as asyncio's CancelledError derives from
// BaseException and not Exception: a `catch (const std::exception&)` meant for errors must not
// swallow a cancellation by accident. Catch it by name, clean up, and rethrow.
class WEFT_API cancelled_error {
 public:
  cancelled_error() noexcept = default;
  virtual ~cancelled_error();
  [[nodiscard]] virtual const char* what() const noexcept { return "weft: the task was cancelled"; }
};

// Thrown by weft::timeout and wait_for when the deadline passed; the inner work was cancelled
// and has finished its cleanup by then.
class WEFT_API timeout_error : public std::runtime_error {
 public:
  timeout_error() : std::runtime_error("weft: the operation timed out") {}
  using std::runtime_error::runtime_error;
};

}  // namespace weft
