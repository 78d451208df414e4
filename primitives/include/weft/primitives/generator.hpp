// weft/primitives/generator.hpp: weft::generator<T>, the async generator (Python's `async def`
// with `yield`).
//
//   weft::generator<int> async_range(int count) {
//     for (int i = 0; i < count; ++i) {
//       co_await weft::sleep(100ms);   // simulate async work
//       co_yield i;
//     }
//   }
//   auto numbers = async_range(10);
//   while (std::optional<int> v = co_await numbers.next()) std::printf("%d\n", *v);
//   // or: co_await weft::for_each(async_range(10), [](int v) { ... });
//
// Semantics:
// - Lazy, with back-pressure: creating a generator runs nothing; each `co_await next()` resumes
//   the body until its next co_yield (the value) or its end (std::nullopt). The body never runs
//   ahead of the consumer. An exception that leaves the body is rethrown by that next(); later
//   calls give std::nullopt.
// - The body runs as a nested coroutine of the consumer, like an awaited task: on the consumer's
//   thread, as part of the consumer's spawned task (its root). So cancelling the consumer cancels
//   the awaits inside the body: a sleep in the body throws weft::cancelled_error, which leaves
//   the body and comes out of next(). One consumer at a time: next() while another next() or
//   close() of the same generator is in progress throws std::logic_error.
// - Dropping the generator destroys a suspended body: the destructors of its locals run (RAII
//   cleanup), code after the co_yield does not. For cleanup that must co_await, call
//   `co_await gen.close()` (Python's aclose()): the body resumes with weft::generator_exit thrown
//   from its suspended co_yield, runs its cleanup (catch the exception, keep it, co_await the
//   cleanup after the try, rethrow it: C++ forbids co_await in a handler), and finishes. close()
//   returns when the body has finished; an exception other than generator_exit that leaves the
//   body is rethrown by close(). A body that co_yields again after generator_exit gets
//   std::logic_error from that co_yield. close() of a body that never started, or finished,
//   does nothing.
// - T is a value type (not a reference, not void); a co_yield constructs a T in the frame, which
//   next() moves out.
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/scheduler/task.hpp>

namespace weft {

// Thrown into an async generator's body at its co_yield by close() (Python's GeneratorExit). Like
// weft::cancelled_error it does not derive from std::exception, so a `catch (const
// std::exception&)` written for errors lets it pass.
class generator_exit {
 public:
  [[nodiscard]] const char* what() const noexcept { return "weft::generator_exit"; }
};

template <class T>
class generator;

namespace detail {

// Resumes the consumer (the continuation) by symmetric transfer; used at co_yield and at the end.
template <class Promise>
struct yield_to_consumer {
  Promise* promise;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
    // Read before the store: once `running` is false another next() may overwrite it.
    std::coroutine_handle<> consumer = promise->continuation();
    promise->running.store(false, std::memory_order_relaxed);
    return consumer;
  }
  void await_resume() const {
    if (promise->closing) throw generator_exit();
  }
};

// The end of the body: resumes the consumer; never resumed itself.
template <class Promise>
struct end_to_consumer {
  Promise* promise;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
    std::coroutine_handle<> consumer = promise->continuation();
    promise->running.store(false, std::memory_order_relaxed);
    return consumer;
  }
  void await_resume() const noexcept {}
};

template <class T>
class generator_promise final : public promise_base {
 public:
  generator<T> get_return_object() noexcept;

  end_to_consumer<generator_promise> final_suspend() noexcept { return {this}; }
  void return_void() const noexcept {}

  template <class U>
  requires std::is_constructible_v<T, U&&> yield_to_consumer<generator_promise> yield_value(
      U&& value) {
    if (closing) {
      throw std::logic_error(
          "weft::generator: co_yield after close() (the body caught "
          "weft::generator_exit and went on)");
    }
    item.emplace(std::forward<U>(value));
    return {this};
  }

  // Set up by next()/close() before each resumption of the body.
  void resume_from(std::coroutine_handle<> consumer, task_header* consumer_root) {
    // Ordering: relaxed; this only detects misuse (two consumers), it synchronizes nothing.
    if (running.exchange(true, std::memory_order_relaxed)) {
      throw std::logic_error(
          "weft::generator: next() or close() while the generator runs "
          "(one consumer at a time)");
    }
    started = true;
    set_awaited(consumer, consumer_root);
  }

  std::optional<T> item;
  bool started = false;
  std::atomic<bool> running{false};
  bool closing = false;
};

}  // namespace detail

template <class T>
class [[nodiscard]] generator {
  static_assert(!std::is_reference_v<T> && !std::is_void_v<T>,
                "weft::generator<T>: T must be a value type");

 public:
  using promise_type = detail::generator_promise<T>;
  using value_type = T;
  using handle_type = std::coroutine_handle<promise_type>;

  generator() noexcept = default;
  explicit generator(handle_type frame) noexcept : frame_(frame) {}
  generator(generator&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  generator& operator=(generator&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.frame_, {});
    }
    return *this;
  }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;
  // Destroys the body where it is suspended: its destructors run (see the file comment).
  ~generator() { reset(); }

  // `co_await next()`: the next item, std::nullopt at the end (also for an empty generator), or
  // the exception that left the body. Resumes the awaiter on the thread the body yielded from.
  auto next() { return next_awaiter{frame_}; }

  // `co_await close()`: Python's aclose(); see the file comment.
  auto close() {
    if (frame_ && !frame_.promise().started) reset();  // nothing ran: nothing to clean up
    return close_awaiter{frame_};
  }

  // False for a default-constructed, moved-from or closed-before-start generator.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(frame_); }
  // True once the body has finished (returned, thrown, or closed).
  [[nodiscard]] bool done() const noexcept { return !frame_ || frame_.done(); }

 private:
  struct next_awaiter {
    handle_type frame;
    [[nodiscard]] bool await_ready() const noexcept { return !frame || frame.done(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> consumer) {
      frame.promise().resume_from(consumer, detail::root_of(consumer));
      return frame;
    }
    std::optional<T> await_resume() {
      if (!frame) return std::nullopt;
      auto& promise = frame.promise();
      if (promise.exception()) std::rethrow_exception(promise.take_exception());
      if (!promise.item) return std::nullopt;
      std::optional<T> out(std::move(promise.item));
      promise.item.reset();
      return out;
    }
  };

  struct close_awaiter {
    handle_type frame;
    [[nodiscard]] bool await_ready() const noexcept { return !frame || frame.done(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> consumer) {
      frame.promise().resume_from(consumer, detail::root_of(consumer));
      frame.promise().closing = true;
      frame.promise().item.reset();
      return frame;
    }
    void await_resume() {
      if (!frame) return;
      std::exception_ptr error = frame.promise().take_exception();
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const generator_exit&) {
        // The body let generator_exit out: it closed as asked.
      }
    }
  };

  void reset() noexcept {
    if (frame_) std::exchange(frame_, {}).destroy();
  }

  handle_type frame_;
};

namespace detail {
template <class T>
generator<T> generator_promise<T>::get_return_object() noexcept {
  // The header finds its frame by its offset (task_header::frame_prefix).
  static_assert(alignof(generator_promise<T>) <= task_header::max_promise_alignment,
                "weft::generator<T>: T may be aligned to at most 16 bytes (a coroutine frame is "
                "not)");
  return generator<T>{std::coroutine_handle<generator_promise>::from_promise(*this)};
}
}  // namespace detail

}  // namespace weft
