// weft/primitives/exception_group.hpp: weft::exception_group, Python's ExceptionGroup, and the
// by-type handling that `except*` does.
//
//   try {
//     co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> { ... });
//   } catch (const weft::exception_group& group) {
//     group.handle<http_error>([](const http_error& e) { log(e.what()); })     // except* HTTPError
//         .handle<weft::timeout_error>([](const auto& e) { log(e.what()); })  // except* Timeout
//         .rethrow_if_any();  // what no handler took propagates, as with except*
//   }
//
// The group keeps every exception, in the order the tasks failed. handle<E> calls the handler for
// each exception of type E (or derived from it) and returns a group of the others; split<E> gives
// both parts.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace weft {

class exception_group : public std::exception {
 public:
  explicit exception_group(std::vector<std::exception_ptr> exceptions)
      : exceptions_(std::move(exceptions)), message_(describe(exceptions_)) {}

  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }
  [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept {
    return exceptions_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return exceptions_.size(); }
  [[nodiscard]] bool empty() const noexcept { return exceptions_.empty(); }

  // The exceptions of type E (first) and all the others (second), each as a group.
  template <class E>
  [[nodiscard]] std::pair<exception_group, exception_group> split() const {
    std::vector<std::exception_ptr> matching;
    std::vector<std::exception_ptr> rest;
    for (const auto& error : exceptions_)
      (matches<E>(error) ? matching : rest).push_back(error);
    return {exception_group(std::move(matching)), exception_group(std::move(rest))};
  }

  // Calls handler(const E&) for every exception of type E; returns the group of the others.
  template <class E, class Handler>
  exception_group handle(Handler&& handler) const {
    std::vector<std::exception_ptr> rest;
    for (const auto& error : exceptions_) {
      try {
        std::rethrow_exception(error);
      } catch (const E& e) {
        handler(e);
      } catch (...) {
        rest.push_back(error);
      }
    }
    return exception_group(std::move(rest));
  }

  // Throws this group if it holds any exception (what is left after handle<E> calls).
  void rethrow_if_any() const {
    if (!exceptions_.empty()) throw *this;
  }

 private:
  template <class E>
  static bool matches(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  static std::string describe(const std::vector<std::exception_ptr>& exceptions) {
    std::string text = "weft: " + std::to_string(exceptions.size()) +
                       (exceptions.size() == 1 ? " task failed" : " tasks failed");
    for (std::size_t i = 0; i < exceptions.size() && i < 3; ++i) {
      text += i == 0 ? ": " : "; ";
      try {
        std::rethrow_exception(exceptions[i]);
      } catch (const std::exception& e) {
        text += e.what();
      } catch (...) {
        text += "(an exception not derived from std::exception)";
      }
    }
    if (exceptions.size() > 3) text += "; ...";
    return text;
  }

  std::vector<std::exception_ptr> exceptions_;
  std::string message_;
};

}  // namespace weft
