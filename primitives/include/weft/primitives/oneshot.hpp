// weft/primitives/oneshot.hpp: weft::oneshot<T>, one value from one producer to one consumer (a
// future/promise pair: asyncio.Future's set_result and await, Rust's oneshot channel).
//
//   auto [sender, receiver] = weft::make_oneshot<int>();   // or weft::oneshot<int>::make()
//   std::thread([s = std::move(sender)]() mutable { s.send(42); }).detach();
//   int v = co_await receiver;                              // 42
//
// Semantics:
// - send(v) may be called from any thread (a worker or not), once; a second call throws
//   std::logic_error. It never waits.
// - `co_await receiver` waits until the value was sent and returns it (moved out: once; awaiting
//   again throws std::logic_error). If the sender is destroyed without sending, the receiver
//   throws weft::oneshot_dropped (a broken promise).
// - The wait is a cancellation point. A receiver cancelled while it waits throws cancelled_error
//   and the value, when it comes, stays in the oneshot for a later `co_await receiver`; a receiver
//   whose value arrived before it resumed returns the value and sees the cancellation at its next
//   cancellation point. The value is never lost.
//
// Implementation: one heap block shared by the two ends, with the value, the waiting coroutine
// and one atomic word of flags. Each end sets its "gone" flag with one RMW when destroyed; the
// end that finds the other's flag already set frees the block. The waiting receiver is resumed
// exactly once: by send (or the sender's destruction), which sets its flag with an RMW and wakes
// the receiver if `waiting` was set, or by a cancellation, which clears `waiting` with a CAS that
// fails if the value came first. Requires: the receiver is not destroyed while it is awaited.
#pragma once

#include <atomic>
#include <coroutine>
#include <optional>
#include <stdexcept>
#include <utility>

#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

// The sender of a oneshot was destroyed without sending.
class oneshot_dropped : public std::runtime_error {
 public:
  oneshot_dropped() : std::runtime_error("weft::oneshot: the sender was dropped without sending") {}
};

template <class T>
class oneshot_sender;
template <class T>
class oneshot_receiver;

namespace detail {

template <class T>
struct oneshot_state {
  static constexpr unsigned value_bit = 1;      // the value is published
  static constexpr unsigned sender_gone = 2;    // the sender was destroyed
  static constexpr unsigned receiver_gone = 4;  // the receiver was destroyed
  static constexpr unsigned waiting = 8;        // the receiver is suspended; waiter fields set
  static constexpr unsigned refuse = 16;        // a cancellation came before the receiver waited

  std::atomic<unsigned> flags{0};
  std::optional<T> value;           // written by the sender before value_bit
  std::coroutine_handle<> waiter;   // written by the receiver before `waiting`
  runtime_core* runtime = nullptr;  // idem

  // One end lets go; the second to do so frees the block. The sender's departure also wakes a
  // receiver that waits for a value that will never come (it throws oneshot_dropped). Ordering:
  // acq_rel, so the end that frees sees every write of the other end (release) before it
  // destroys the value, and the sender sees the waiter fields (as in publish).
  void release(unsigned gone_bit, unsigned other_gone) noexcept {
    const unsigned before = flags.fetch_or(gone_bit, std::memory_order_acq_rel);
    if ((before & other_gone) != 0) {
      delete this;
    } else if (gone_bit == sender_gone && (before & (value_bit | waiting)) == waiting) {
      // Safety: as in publish; after this wake the receiver may free the block at once.
      wake(runtime, waiter);
    }
  }

  // Publishes the value and wakes the receiver if it waits.
  // Ordering: acq_rel: release publishes the value to the receiver's acquire load; acquire makes
  // the waiter fields, published by the receiver's release CAS of `waiting`, visible here.
  void publish() noexcept {
    const unsigned before = flags.fetch_or(value_bit, std::memory_order_acq_rel);
    if ((before & (value_bit | waiting)) == waiting) {
      // Safety: the receiver cannot resume before this wake (a cancellation's CAS of `waiting`
      // now fails) and the block lives while this end has not set its gone flag.
      wake(runtime, waiter);
    }
  }
};

}  // namespace detail

template <class T>
class oneshot_sender {
 public:
  oneshot_sender() noexcept = default;
  oneshot_sender(oneshot_sender&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)), sent_(other.sent_) {}
  oneshot_sender& operator=(oneshot_sender&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
      sent_ = other.sent_;
    }
    return *this;
  }
  ~oneshot_sender() { reset(); }

  // Sends the value and wakes the receiver. Throws std::logic_error if already sent or empty.
  void send(T value) {
    if (state_ == nullptr) throw std::logic_error("weft::oneshot_sender::send: an empty sender");
    if (sent_) throw std::logic_error("weft::oneshot_sender::send: the value was already sent");
    state_->value.emplace(std::move(value));
    sent_ = true;
    state_->publish();
  }

  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  [[nodiscard]] bool sent() const noexcept { return sent_; }

 private:
  using state_type = detail::oneshot_state<T>;
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> make_oneshot();
  explicit oneshot_sender(state_type* state) noexcept : state_(state) {}

  void reset() noexcept {
    if (state_ == nullptr) return;
    std::exchange(state_, nullptr)->release(state_type::sender_gone, state_type::receiver_gone);
  }

  state_type* state_ = nullptr;
  bool sent_ = false;
};

template <class T>
class oneshot_receiver {
  using state_type = detail::oneshot_state<T>;

 public:
  oneshot_receiver() noexcept = default;
  oneshot_receiver(oneshot_receiver&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)), taken_(other.taken_) {}
  oneshot_receiver& operator=(oneshot_receiver&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
      taken_ = other.taken_;
    }
    return *this;
  }
  ~oneshot_receiver() { reset(); }

  // True once `co_await` would not wait: the value was sent or the sender is gone.
  [[nodiscard]] bool ready() const noexcept {
    // Ordering: acquire pairs with the sender's acq_rel fetch_or of value_bit (or gone_bit):
    // true means the value written before it is visible to the co_await that follows.
    return state_ != nullptr && (state_->flags.load(std::memory_order_acquire) &
                                 (state_type::value_bit | state_type::sender_gone)) != 0;
  }
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  class [[nodiscard]] awaiter : private detail::cancellable_wait {
   public:
    explicit awaiter(oneshot_receiver& r) noexcept : receiver_(&r), state_(r.state_) {}
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;

    [[nodiscard]] bool await_ready() const noexcept {
      return state_ == nullptr || receiver_->ready();
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> self) {
      detail::require_worker("weft::oneshot_receiver wait");
      on_cancel = &cancel_wait;
      if (begin(detail::root_of(self), detail::wait_kind::oneshot)) return false;
      state_->waiter = self;
      state_->runtime = detail::current_runtime_core();
      unsigned flags = state_->flags.load(std::memory_order_relaxed);
      for (;;) {
        if ((flags & state_type::refuse) != 0) return false;  // await_resume throws
        if ((flags & (state_type::value_bit | state_type::sender_gone)) != 0) return false;
        // Ordering: release publishes the waiter fields to the sender's acq_rel RMW; acquire on
        // failure re-reads what the sender published. Safety: after this CAS, *this may be
        // resumed and destroyed at once; nothing below touches it.
        if (state_->flags.compare_exchange_weak(flags, flags | state_type::waiting,
                                                std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
          return true;
        }
      }
    }

    T await_resume() {
      if (state_ == nullptr) throw std::logic_error("weft::oneshot_receiver: an empty receiver");
      // Ordering: acquire pairs with the sender's release in publish(): the value is visible.
      const unsigned flags = state_->flags.load(std::memory_order_acquire);
      if ((flags & state_type::value_bit) != 0) {
        abandon();  // a cancellation that came after the value stays pending
        if (receiver_->taken_) {
          throw std::logic_error("weft::oneshot_receiver: the value was already taken");
        }
        receiver_->taken_ = true;
        return std::move(*state_->value);
      }
      if ((flags & state_type::sender_gone) != 0) {
        abandon();
        throw oneshot_dropped();
      }
      finish();  // throws cancelled_error
      throw cancelled_error();
    }

    // Clears a refusal so that a later await can wait again (on_cancel has returned by now:
    // await_resume withdrew the hook, and nothing else sets the flag).
    ~awaiter() {
      if (state_ != nullptr)
        state_->flags.fetch_and(~state_type::refuse, std::memory_order_relaxed);
    }

   private:
    static void cancel_wait(detail::cancel_hook* hook) noexcept {
      auto* self = static_cast<awaiter*>(static_cast<detail::cancellable_wait*>(hook));
      self->mark_cancelled();
      state_type* state = self->state_;
      // Ordering: acquire, the first read of the CAS loop below (its comment has the argument).
      unsigned flags = state->flags.load(std::memory_order_acquire);
      for (;;) {
        // The value (or the sender's departure) came first: the receiver keeps it.
        if ((flags & (state_type::value_bit | state_type::sender_gone)) != 0) return;
        const unsigned next = (flags & state_type::waiting) != 0 ? flags & ~state_type::waiting
                                                                 : flags | state_type::refuse;
        // Ordering: acq_rel against the sender's RMW: exactly one of the two sees `waiting` set
        // and resumes the receiver.
        if (state->flags.compare_exchange_weak(flags, next, std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
          if ((flags & state_type::waiting) != 0) {
            // `waiter` was written before `waiting` was set (release); this CAS acquired it.
            detail::wake(runtime_of(self->root()), state->waiter);
          }
          return;
        }
      }
    }

    oneshot_receiver* receiver_;
    state_type* state_;
  };

  awaiter operator co_await() & noexcept { return awaiter(*this); }
  awaiter operator co_await() && noexcept { return awaiter(*this); }

 private:
  template <class U>
  friend std::pair<oneshot_sender<U>, oneshot_receiver<U>> make_oneshot();
  explicit oneshot_receiver(state_type* state) noexcept : state_(state) {}

  void reset() noexcept {
    if (state_ != nullptr) {
      std::exchange(state_, nullptr)->release(state_type::receiver_gone, state_type::sender_gone);
    }
  }

  state_type* state_ = nullptr;
  bool taken_ = false;
};

// A connected sender and receiver.
template <class T>
std::pair<oneshot_sender<T>, oneshot_receiver<T>> make_oneshot() {
  auto* state = new detail::oneshot_state<T>();
  return {oneshot_sender<T>(state), oneshot_receiver<T>(state)};
}

// Names in one place: weft::oneshot<T>::sender, ::receiver, ::make().
template <class T>
struct oneshot {
  using sender = oneshot_sender<T>;
  using receiver = oneshot_receiver<T>;
  static std::pair<sender, receiver> make() { return make_oneshot<T>(); }
};

}  // namespace weft
