// weft/primitives/async_with.hpp: async context managers (Python's `async with`), class-based
// and generator-based (@asynccontextmanager).
//
// Class-based: any object with an awaitable `close()`, or with `enter()` / `exit(error)`:
//
//   co_await weft::async_with(database_connection(url), [](database_connection& db)
//                                                         -> weft::task<rows> {
//     co_return co_await db.fetch("SELECT * FROM users");
//   });
//
//   - `enter()` (optional, Python's __aenter__): awaited first; the body gets what it returns
//     (an lvalue reference to it), or the object itself when enter() returns void or is absent.
//   - `exit(std::exception_ptr error)` (Python's __aexit__): awaited after the body with the
//     body's exception (null on success). Without exit(), `close()` is awaited instead.
//     Unlike __aexit__, it cannot suppress the exception: catch it in the body for that.
//   - An exception from enter() propagates and no cleanup runs (as in Python).
//
// Generator-based: a weft::resource<T> coroutine acquires, co_yields the resource once, and cleans
// up after the co_yield. The co_yield gives the body's exception (null on success), so the
// cleanup can log it; it is rethrown to the caller afterwards either way:
//
//   weft::resource<connection> database_connection(std::string url) {
//     connection conn = co_await async_connect(url);
//     std::exception_ptr error = co_yield conn;       // the body runs here, borrowing conn
//     if (error) log("database error");
//     co_await conn.close();                          // runs in all three endings
//   }
//   co_await weft::async_with(database_connection(url), [](connection& c) -> weft::task<rows> {
//     co_return co_await c.fetch("SELECT * FROM users");
//   });
//   (weft::using_resource is the same call.)
//
// The contract, for both forms:
// - The body is a callable taking the resource by lvalue reference and returning a weft::task<R>
//   (or any awaitable); async_with gives R. Body and resource are moved into async_with's frame
//   (an lvalue resource of the class form is borrowed by reference).
// - Cleanup runs exactly once, after the body, whether the body returned, threw, or was
//   cancelled; then the body's exception (the cancelled_error included) is rethrown. An
//   exception thrown by the cleanup itself replaces the body's, as in Python.
// - Cleanup is shielded from the cancellation that ended the body: that request was consumed
//   when the cancelled_error was thrown, so the cleanup's awaits run normally. A request still
//   pending when the body ends (it arrived after the body's last cancellation point) is taken
//   before the cleanup and thrown as cancelled_error after it. A *new* cancel() during the cleanup
//   interrupts the cleanup at its next cancellation point (the way to stop a hung cleanup, as
//   docs/cancellation.md says of any cleanup).
// - A resource coroutine that throws before its co_yield fails async_with without running the
//   body; one that returns without co_yield gives std::logic_error; a second co_yield throws
//   std::logic_error inside it.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/primitives/async_iterator.hpp>
#include <weft/scheduler/detail/waiting.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

template <class T>
class resource;

namespace detail {

template <class T>
class resource_promise final : public promise_base {
 public:
  resource<T> get_return_object() noexcept;

  struct to_user {
    resource_promise* promise;
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
      return promise->continuation();
    }
    // The value of `co_yield`: the body's exception, null on success.
    std::exception_ptr await_resume() const noexcept { return promise->body_error; }
  };

  to_user final_suspend() noexcept { return {this}; }
  void return_void() const noexcept {}

  to_user yield_value(T& yielded) { return yield_address(std::addressof(yielded)); }
  to_user yield_value(T&& yielded) { return yield_address(std::addressof(yielded)); }

  T* value = nullptr;  // the yielded resource, alive in the frame while the body runs
  std::exception_ptr body_error;

 private:
  to_user yield_address(T* address) {
    if (value != nullptr) throw std::logic_error("weft::resource: co_yield more than once");
    value = address;
    return {this};
  }
};

// Resumes the resource coroutine until its co_yield or its end, as a nested coroutine of the
// caller (same root: the acquisition and the cleanup are cancellable like any awaited task).
template <class T>
struct resume_resource {
  std::coroutine_handle<resource_promise<T>> frame;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    frame.promise().set_awaited(caller, root_of(caller));
    return frame;
  }
  void await_resume() const noexcept {}
};

// Takes a cancellation that is pending now (not yet thrown anywhere), so that the cleanup about to
// run is not interrupted by it; true if one was taken (the caller throws it after the cleanup).
struct take_pending_cancel_awaiter {
  bool taken = false;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    task_header* root = root_of(self);
    taken = take_cancellation(root);
    return false;
  }
  [[nodiscard]] bool await_resume() const noexcept { return taken; }
};

template <class Body, class Arg>
using body_result_t = await_result_t<std::invoke_result_t<Body&, Arg&>>;

// Runs body(arg), keeping its value in `out` or its exception in the returned exception_ptr.
template <class R, class Body, class Arg>
task<void> run_body(Body& body, Arg& arg, std::optional<R>& out, std::exception_ptr& error) {
  try {
    out.emplace(co_await std::invoke(body, arg));
  } catch (...) {
    error = std::current_exception();
  }
}
template <class Body, class Arg>
task<void> run_body_void(Body& body, Arg& arg, std::exception_ptr& error) {
  try {
    co_await std::invoke(body, arg);
  } catch (...) {
    error = std::current_exception();
  }
}

template <class Res>
concept has_exit = requires(Res& r, std::exception_ptr e) {
  { r.exit(e) } -> awaitable;
};
template <class Res>
concept has_close = requires(Res& r) {
  { r.close() } -> awaitable;
};
template <class Res>
concept has_enter = requires(Res& r) {
  { r.enter() } -> awaitable;
};

template <class Res>
task<void> exit_of(Res& res, std::exception_ptr error) {
  if constexpr (has_exit<Res>) {
    co_await res.exit(std::move(error));
  } else {
    co_await res.close();
  }
}

template <class Res, class Body, class Arg>
task<body_result_t<Body, Arg>> with_entered(Res& res, Body& body, Arg& arg) {
  using R = body_result_t<Body, Arg>;
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
  if constexpr (std::is_void_v<R>) {
    co_await run_body_void(body, arg, error);
  } else {
    co_await run_body<R>(body, arg, result, error);
  }
  const bool cancel_taken = co_await take_pending_cancel_awaiter{};
  co_await exit_of(res, error);
  if (error) std::rethrow_exception(error);
  if (cancel_taken) throw detail::cancellation_of(co_await detail::current_root_awaiter{});
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

template <class Res, class Body>
auto class_with(Res res, Body body) -> task<body_result_t<Body, std::remove_reference_t<Res>>>
requires(!has_enter<std::remove_reference_t<Res>>) {
  co_return co_await with_entered(res, body, res);
}

template <class Res, class Body>
requires has_enter<std::remove_reference_t<Res>>
auto class_with(Res res, Body body)
    -> task<body_result_t<Body, std::remove_reference_t<await_result_t<decltype(res.enter())>>>> {
  using entered_t = await_result_t<decltype(res.enter())>;
  if constexpr (std::is_void_v<entered_t>) {
    co_await res.enter();
    co_return co_await with_entered(res, body, res);
  } else {
    decltype(auto) entered = co_await res.enter();
    co_return co_await with_entered(res, body, entered);
  }
}

}  // namespace detail

// A generator-style async context manager (see the file comment). Move-only; dropping one that
// was never used destroys it without running it.
template <class T>
class [[nodiscard]] resource {
 public:
  using promise_type = detail::resource_promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  explicit resource(handle_type frame) noexcept : frame_(frame) {}
  resource(resource&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  resource& operator=(resource&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.frame_, {});
    }
    return *this;
  }
  resource(const resource&) = delete;
  resource& operator=(const resource&) = delete;
  ~resource() { reset(); }

  [[nodiscard]] handle_type frame() const noexcept { return frame_; }

 private:
  void reset() noexcept {
    if (frame_) std::exchange(frame_, {}).destroy();
  }
  handle_type frame_;
};

namespace detail {

template <class T>
resource<T> resource_promise<T>::get_return_object() noexcept {
  // The header finds its frame by its offset (task_header::frame_prefix).
  static_assert(alignof(resource_promise<T>) <= task_header::max_promise_alignment);
  return resource<T>{std::coroutine_handle<resource_promise>::from_promise(*this)};
}

template <class T, class Body>
task<body_result_t<Body, T>> resource_with(resource<T> res, Body body) {
  using R = body_result_t<Body, T>;
  auto frame = res.frame();
  if (!frame) throw std::logic_error("weft::async_with: empty weft::resource");
  auto& promise = frame.promise();
  co_await resume_resource<T>{frame};  // acquire: runs until the co_yield
  if (promise.exception()) std::rethrow_exception(promise.exception());
  if (promise.value == nullptr) {
    throw std::logic_error("weft::async_with: the weft::resource returned without co_yield");
  }
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
  if constexpr (std::is_void_v<R>) {
    co_await run_body_void(body, *promise.value, error);
  } else {
    co_await run_body<R>(body, *promise.value, result, error);
  }
  const bool cancel_taken = co_await take_pending_cancel_awaiter{};
  promise.body_error = error;
  co_await resume_resource<T>{frame};  // clean up: runs from the co_yield to the end
  if (promise.exception()) std::rethrow_exception(promise.exception());
  if (error) std::rethrow_exception(error);
  if (cancel_taken) throw detail::cancellation_of(co_await detail::current_root_awaiter{});
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

}  // namespace detail

// `async with resource as r: body(r)` for a weft::resource<T> (generator-based).
template <class T, class Body>
auto async_with(resource<T> res, Body body) {
  return detail::resource_with<T, Body>(std::move(res), std::move(body));
}

// `async with res as r: body(r)` for a class with close(), or enter()/exit(error).
template <class Res, class Body>
requires(detail::has_close<std::remove_cvref_t<Res>> ||
         detail::has_exit<std::remove_cvref_t<Res>>) auto async_with(Res&& res, Body body) {
  return detail::class_with<detail::source_storage_t<Res&&>, Body>(std::forward<Res>(res),
                                                                   std::move(body));
}

// The same as async_with for a generator-based resource, under the name the issue proposed.
template <class T, class Body>
auto using_resource(resource<T> res, Body body) {
  return async_with(std::move(res), std::move(body));
}

}  // namespace weft
