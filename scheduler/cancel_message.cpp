// scheduler/cancel_message.cpp: the message a cancellation carries (cancel("reason"), asyncio's
// Task.cancel(msg)) and weft::cancelled_error, which carries it.
//
// A message is made once by the canceller, published in the task's header
// (task_header::cancel_message_slot), taken by the cancellation point that throws, and then
// shared by every copy of the cancelled_error (an exception is copied by std::exception_ptr,
// by rethrows into a join_handle, by exception groups): a reference count, so that copying a
// cancelled_error never allocates or throws, as an exception's copy must not.
#include <weft/scheduler/errors.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace weft {

namespace detail {

struct cancel_message {
  std::atomic<std::uint32_t> refs{1};
  std::string what;          // the whole what(): the prefix below, then the message
  std::size_t message_at{};  // where the message begins in `what`
};

namespace {
constexpr std::string_view prefix = "weft: the task was cancelled";
}

cancel_message* make_cancel_message(std::string_view text) {
  auto* message = new cancel_message;
  message->what.reserve(prefix.size() + 2 + text.size());
  message->what.append(prefix).append(": ").append(text);
  message->message_at = prefix.size() + 2;
  return message;
}

void release_cancel_message(cancel_message* message) noexcept {
  // Ordering: acq_rel, the usual reference count: release orders this holder's reads of the text
  // before the free, acquire makes the last holder see every other holder's release.
  if (message != nullptr && message->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete message;
  }
}

namespace {
cancel_message* share(cancel_message* message) noexcept {
  // Ordering: relaxed, as for a shared_ptr copy: the copier holds a reference already, so the
  // count cannot reach zero meanwhile, and the text was published to it when it got that one.
  if (message != nullptr) message->refs.fetch_add(1, std::memory_order_relaxed);
  return message;
}
}  // namespace

}  // namespace detail

cancelled_error::cancelled_error(std::string_view message)
    : message_(detail::make_cancel_message(message)) {}

cancelled_error::cancelled_error(const cancelled_error& other) noexcept
    : message_(detail::share(other.message_)) {}

cancelled_error& cancelled_error::operator=(const cancelled_error& other) noexcept {
  detail::cancel_message* taken = detail::share(other.message_);  // first: self-assignment
  detail::release_cancel_message(message_);
  message_ = taken;
  return *this;
}

cancelled_error::~cancelled_error() { detail::release_cancel_message(message_); }

const char* cancelled_error::what() const noexcept {
  return message_ != nullptr ? message_->what.c_str() : detail::prefix.data();
}

std::string_view cancelled_error::message() const noexcept {
  if (message_ == nullptr) return {};
  return std::string_view(message_->what).substr(message_->message_at);
}

}  // namespace weft
