// scheduler/cancel_message.cpp: the message a cancellation carries (cancel("reason"), asyncio's
// Task.cancel(msg)) and weft::cancelled_error, which carries it.
//
// A message is made once by the canceller, published in the message table below, taken by the
// cancellation point that throws, and then shared by every copy of the cancelled_error (an
// exception is copied by std::exception_ptr, by rethrows into a join_handle, by exception
// groups): a reference count, so that copying a cancelled_error never allocates or throws, as an
// exception's copy must not.
//
// The table maps a task to its waiting message. It is one map under one mutex for the process,
// not a field of the task header: the header has no byte to spare (bytes per suspended task,
// tests/scheduler/test_task.cpp's budgets), messages are rare, and a task that moved to another
// runtime (resume_on) keeps its entry. The header has one bit, task_header::cancel_has_message,
// so that the common case, a cancellation without a message, never takes the lock.
//
// Invariant: a task's entry exists exactly when its cancel_has_message bit is set, both changed
// only under the table's lock; the entry owns one reference to its message.
// Ordering: the canceller sets the bit (under the lock) before its request (request_cancel's
// seq_cst RMW of the same word); the delivery takes the pending bit with an acq_rel RMW, which
// reads a value later in that word's modification order, so it sees the bit of every message
// written before the request it delivers, and the lock then orders the entry itself (the text
// included) before the taker's read.
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/errors.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include <weft/scheduler/detail/task_header.hpp>

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

struct message_table {
  std::mutex lock;
  std::unordered_map<const task_header*, cancel_message*> entries;
};

// Never destroyed: tasks (and their headers' destructors) may outlive static destruction.
message_table& messages() {
  static auto* table = new message_table;
  return *table;
}

}  // namespace

cancel_message* take_cancel_message_of(task_header* task) noexcept {
  message_table& table = messages();
  std::lock_guard guard(table.lock);
  auto it = table.entries.find(task);
  if (it == table.entries.end()) return nullptr;
  cancel_message* message = it->second;
  table.entries.erase(it);
  // Ordering: relaxed; the lock orders the bit with the entry (file comment).
  task->cancel_word().fetch_and(~task_header::cancel_has_message, std::memory_order_relaxed);
  return message;
}

void request_cancel(task_header* task, std::string_view message) {
  // asyncio's cancel() on a done task does nothing; so here, and the message is not even made.
  if (task->finished()) return;
  cancel_message* made = make_cancel_message(message);  // may throw: nothing requested yet
  cancel_message* displaced = nullptr;
  {
    message_table& table = messages();
    std::lock_guard guard(table.lock);
    try {
      auto [it, inserted] = table.entries.try_emplace(task, made);
      if (!inserted) displaced = std::exchange(it->second, made);  // the latest message wins
    } catch (...) {
      release_cancel_message(made);
      throw;  // no cancellation either
    }
    // Ordering: relaxed under the lock; sequenced before the request below (file comment).
    task->cancel_word().fetch_or(task_header::cancel_has_message, std::memory_order_relaxed);
  }
  release_cancel_message(displaced);
  request_cancel(task);
}

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
