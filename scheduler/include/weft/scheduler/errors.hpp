// weft/scheduler/errors.hpp: the exceptions the scheduler throws.
#pragma once

#include <stdexcept>
#include <string_view>

#include <weft/scheduler/export.hpp>

namespace weft {

// Thrown when work is submitted to a runtime that is shutting down, and when a join_handle is
// awaited whose task was abandoned because its runtime shut down before the task finished.
class WEFT_API runtime_stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// The text of a cancel("reason"): immutable once made, shared by reference count between the
// task's header (until a cancellation point takes it) and the cancelled_error copies that carry
// it. Defined in scheduler/cancel_message.cpp.
struct cancel_message;
struct adopt_message_t {
  explicit adopt_message_t() = default;
};
inline constexpr adopt_message_t adopt_message{};
// Makes a message with one reference (std::bad_alloc if memory is short).
WEFT_API cancel_message* make_cancel_message(std::string_view text);
// Drops one reference; the last one frees the message. Null is ignored.
WEFT_API void release_cancel_message(cancel_message* message) noexcept;
}  // namespace detail

// Thrown at a cancellation point of a task that was cancelled (join_handle::cancel, a cancelled
// task group or gather, an expired timeout), and by awaiting a task that ended cancelled.
//
// Deliberately not derived from std::exception, as asyncio's CancelledError derives from
// BaseException and not Exception: a `catch (const std::exception&)` meant for errors must not
// swallow a cancellation by accident. Catch it by name, clean up, and rethrow.
//
// message() is the reason given to cancel("reason") (asyncio's Task.cancel(msg), read there as
// CancelledError.args[0]); empty when none was given. what() includes it. Copies share the text
// (copying never allocates or throws). docs/cancellation.md says which cancellation carries which
// message.
class WEFT_API cancelled_error {
 public:
  cancelled_error() noexcept = default;
  // A cancellation with a reason, thrown by user code (std::bad_alloc if memory is short).
  explicit cancelled_error(std::string_view message);
  // For the runtime: takes over one reference to `message` (may be null).
  cancelled_error(detail::adopt_message_t, detail::cancel_message* message) noexcept
      : message_(message) {}
  cancelled_error(const cancelled_error& other) noexcept;
  cancelled_error& operator=(const cancelled_error& other) noexcept;
  virtual ~cancelled_error();
  // "weft: the task was cancelled", then ": " and the message if there is one.
  [[nodiscard]] virtual const char* what() const noexcept;
  // The reason given to cancel(), or "".
  [[nodiscard]] std::string_view message() const noexcept;

 private:
  detail::cancel_message* message_ = nullptr;
};

// Thrown by weft::timeout and wait_for when the deadline passed; the inner work was cancelled
// and has finished its cleanup by then.
class WEFT_API timeout_error : public std::runtime_error {
 public:
  timeout_error() : std::runtime_error("weft: the operation timed out") {}
  using std::runtime_error::runtime_error;
};

}  // namespace weft
