// weft/primitives/async_iterator.hpp: the async iterator concept (Python's __anext__ protocol)
// and for_each, the `async for` loop.
//
//   struct countdown {                                    // a hand-written async iterator
//     using value_type = int;
//     int left;
//     weft::task<std::optional<int>> next() {
//       if (left == 0) co_return std::nullopt;           // StopAsyncIteration
//       co_await weft::sleep(100ms);
//       co_return left--;
//     }
//   };
//   co_await weft::for_each(countdown{3}, [](int v) { std::printf("%d\n", v); });
//
// An async iterator is any type with a `value_type` and a `next()` whose co_await gives
// std::optional<value_type>: a value, or std::nullopt at the end. An exception thrown by next()
// ends the iteration and goes to the consumer. weft::generator<T> is one; every stream helper
// (streams.hpp, merge.hpp) accepts any of them.
//
// Sources passed to the helpers: an rvalue is moved into the helper's frame (owned); an lvalue is
// borrowed by reference and must outlive the helper's use of it (as a Python comprehension over an
// existing iterator consumes that iterator in place).
#pragma once

#include <concepts>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/scheduler/task.hpp>

namespace weft {

namespace detail {

// The awaiter that `co_await a` would use: a member or free operator co_await, or `a` itself.
template <class A>
decltype(auto) awaiter_of(A&& a) {
  if constexpr (requires { static_cast<A&&>(a).operator co_await(); }) {
    return static_cast<A&&>(a).operator co_await();
  } else if constexpr (requires { operator co_await(static_cast<A&&>(a)); }) {
    return operator co_await(static_cast<A&&>(a));
  } else {
    return static_cast<A&&>(a);
  }
}

}  // namespace detail

// Something `co_await` accepts (a task, a join_handle, an awaiter).
template <class A>
concept awaitable = requires(A&& a) {
  detail::awaiter_of(static_cast<A&&>(a)).await_ready();
};

// The type `co_await a` gives for an expression `a` of type A.
template <awaitable A>
using await_result_t = decltype(detail::awaiter_of(std::declval<A>()).await_resume());

// The __anext__ protocol: `co_await it.next()` gives std::optional<value_type>.
template <class I>
concept async_iterator = requires(I& it) {
  typename I::value_type;
  { it.next() } -> awaitable;
}
&&std::same_as<await_result_t<decltype(std::declval<I&>().next())>,
               std::optional<typename I::value_type>>;

template <class S>
using stream_value_t = typename std::remove_cvref_t<S>::value_type;

namespace detail {

// How a helper keeps a source passed as S&&: a reference to an lvalue, its own copy of an rvalue.
template <class S>
using source_storage_t =
    std::conditional_t<std::is_lvalue_reference_v<S>, S, std::remove_cvref_t<S>>;

// What a callback returns once awaited, if it returned something awaitable.
template <class R>
struct awaited_or_plain {
  using type = R;
};
template <awaitable R>
struct awaited_or_plain<R> {
  using type = await_result_t<R>;
};
template <class F, class... Args>
using call_result_t = typename awaited_or_plain<std::invoke_result_t<F&, Args...>>::type;

template <class Src, class F>
task<void> for_each_impl(Src source, F fn) {
  while (auto item = co_await source.next()) {
    if constexpr (awaitable<std::invoke_result_t<F&, stream_value_t<Src>&&>>) {
      co_await std::invoke(fn, std::move(*item));
    } else {
      std::invoke(fn, std::move(*item));
    }
  }
}

}  // namespace detail

// `async for item in source: fn(item)`. fn takes the item (moved) and returns nothing or
// something awaitable (a task), which is awaited before the next item is asked for. The loop
// ends at the end of the source; an exception from the source or from fn goes to the caller.
template <class S, class F>
requires async_iterator<std::remove_cvref_t<S>> task<void> for_each(S&& source, F fn) {
  return detail::for_each_impl<detail::source_storage_t<S&&>, F>(std::forward<S>(source),
                                                                 std::move(fn));
}

}  // namespace weft
