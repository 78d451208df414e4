// weft/primitives/channel.hpp: weft::channel<T>, a multi-producer multi-consumer channel that can
// be closed (Go's channels, Rust's async-channel, trio's memory channels).
//
//   weft::channel<std::string> ch(16);            // bounded; weft::channel<T> ch; is unbounded
//   co_await ch.send("line");                     // waits while the channel is full
//   while (auto line = co_await ch.receive()) {   // std::nullopt once closed and drained
//     use(*line);
//   }
//   ch.close();                                   // from a producer, when it has sent everything
//
// Where weft::queue mirrors asyncio.Queue (task_done, join, exceptions for empty and full), a
// channel is the plainer tool for streams of values: receive() ends the stream with std::nullopt
// instead of an exception, and the non-waiting forms report with a bool or an empty optional.
//
// Semantics:
// - send waits while the channel is full (bounded only); receive while it is empty. Waiting
//   receivers are served in FIFO order, and so are waiting senders.
// - close(): from then on send throws weft::channel_closed, and so do the senders that were
//   waiting (their values were not sent); receivers drain what is left, then get std::nullopt.
//   Idempotent.
// - try_send(v) returns false if the channel is full (v is left untouched) and throws
//   channel_closed if it was closed; try_receive() returns std::nullopt if nothing is there.
//   Both may be called from any thread, also one that is no worker of a runtime.
// - Cancellation, as weft::queue: send and receive are cancellation points when they wait; a
//   cancelled sender sent nothing, a cancelled receiver received nothing, and a receiver woken
//   with a value keeps it even if cancelled before it resumed (the cancellation is thrown at its
//   next cancellation point). No value is lost or duplicated.
//
// Implementation: a bounded channel keeps its values in a lock-free MPMC ring
// (detail/mpmc_ring.hpp) that send and receive use without a lock while nobody waits; the waiter
// lists and the hand-off protocol are weft::queue's (detail/queue_core.hpp), under a spinlock that
// only waiters, close and cancellation take (detail/channel_core.hpp argues why no value is left
// in the ring while a receiver sleeps). With both workers busy, bench_channel moves an item in
// 42-95 ns instead of 130-175 ns under the lock (docs/architecture.md, "Channel fast path"). An
// unbounded channel has no fast path: its values live in a growable buffer under the lock.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <utility>

#include <weft/primitives/detail/channel_core.hpp>
#include <weft/primitives/detail/queue_core.hpp>

namespace weft {

// send on a closed channel.
class channel_closed : public std::runtime_error {
 public:
  channel_closed() : std::runtime_error("weft::channel: the channel is closed") {}
};

template <class T>
class channel {
 public:
  using receive_awaiter =
      detail::get_awaiter<T, true, channel_closed, detail::ring_buffer<T>,
                          detail::wait_kind::channel_receive, detail::channel_core<T>>;
  using send_awaiter =
      detail::put_awaiter<T, channel_closed, detail::ring_buffer<T>,
                          detail::wait_kind::channel_send, detail::channel_core<T>>;

  // capacity 0 (the default): unbounded. A bounded channel allocates its ring of `capacity`
  // places here (std::bad_alloc if that fails).
  explicit channel(std::size_t capacity = 0) : core_(capacity) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  // Sends `value`, waiting while the channel is full. Throws channel_closed once closed,
  // cancelled_error if cancelled while waiting (nothing was sent).
  [[nodiscard]] send_awaiter send(T value) noexcept {
    return send_awaiter(core_, std::move(value));
  }

  // Receives the oldest value, waiting while the channel is empty; std::nullopt once the channel
  // is closed and empty. Throws cancelled_error if cancelled while waiting.
  [[nodiscard]] receive_awaiter receive() noexcept { return receive_awaiter(core_); }

  // Sends without waiting: false if the channel is full (value untouched); throws channel_closed.
  bool try_send(T&& value) { return try_send_ref(value); }
  bool try_send(const T& value) {
    T copy(value);
    return try_send_ref(copy);
  }

  // Receives without waiting: std::nullopt if the channel is empty (closed() tells whether more
  // can come).
  std::optional<T> try_receive() noexcept {
    std::optional<T> value;
    (void)core_.try_get(value);
    return value;
  }

  // Closes the channel; see the file comment.
  void close() noexcept { core_.shutdown(); }
  [[nodiscard]] bool closed() noexcept { return core_.is_shut_down(); }

  // Values sent and not yet received (not counting those handed straight to receivers).
  [[nodiscard]] std::size_t size() noexcept { return core_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return core_.maxsize(); }

 private:
  bool try_send_ref(T& value) {
    switch (core_.try_put(value)) {
      case detail::try_result::done:
        return true;
      case detail::try_result::would_block:
        return false;
      case detail::try_result::shut_down:
        throw channel_closed();
    }
    return false;
  }

  detail::channel_core<T> core_;
};

}  // namespace weft
