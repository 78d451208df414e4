// weft/primitives/outcome.hpp: weft::outcome<T>, a value or the exception that replaced it.
//
// What gather(weft::return_exceptions, ...) gives per child, like the mix of results and exception
// objects that asyncio.gather(..., return_exceptions=True) returns:
//
//   for (auto& result : co_await weft::gather(weft::return_exceptions, std::move(tasks))) {
//     if (result) use(result.value()); else log(result.error());
//   }
#pragma once

#include <exception>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

template <class T>
class outcome {
  using stored =
      std::conditional_t<std::is_void_v<T>, std::monostate,
                         std::conditional_t<std::is_reference_v<T>,
                                            std::reference_wrapper<std::remove_reference_t<T>>, T>>;

 public:
  // An empty outcome holds neither (the state of a child whose result was never produced).
  outcome() = default;
  static outcome failure(std::exception_ptr error) {
    outcome result;
    result.state_.template emplace<2>(std::move(error));
    return result;
  }
  template <class... Args>
  static outcome success(Args&&... args) {
    outcome result;
    result.state_.template emplace<1>(std::forward<Args>(args)...);
    return result;
  }

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 1; }
  [[nodiscard]] bool has_error() const noexcept { return state_.index() == 2; }
  explicit operator bool() const noexcept { return has_value(); }

  // The value; rethrows the exception if there is one.
  decltype(auto) value() & {
    check();
    if constexpr (std::is_reference_v<T>) {
      return std::get<1>(state_).get();
    } else if constexpr (!std::is_void_v<T>) {
      return std::get<1>(state_);
    }
  }
  decltype(auto) value() && {
    check();
    if constexpr (std::is_reference_v<T>) {
      return std::get<1>(state_).get();
    } else if constexpr (!std::is_void_v<T>) {
      return T(std::move(std::get<1>(state_)));
    }
  }

  // The exception, or null.
  [[nodiscard]] std::exception_ptr error() const noexcept {
    return has_error() ? std::get<2>(state_) : nullptr;
  }

 private:
  void check() const {
    if (has_error()) std::rethrow_exception(std::get<2>(state_));
    if (!has_value()) throw std::logic_error("weft::outcome: empty");
  }

  std::variant<std::monostate, stored, std::exception_ptr> state_;
};

}  // namespace weft
