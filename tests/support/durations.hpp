// tests/support/durations.hpp: the duration types and extreme values the saturation tests of
// sleep, timeout, wait and retry run through (scheduler/.../detail/duration.hpp has the rules).
//
//   TEST_CASE_TEMPLATE_DEFINE("sleep: ...", D, sleep_extremes);
//   TEST_CASE_TEMPLATE_APPLY(sleep_extremes, weft_test::every_integral_duration);
//
// Every standard unit from nanoseconds to days, plus a 32-bit and an unsigned rep: each one's max()
// overflows clock::duration (nanoseconds, int64) when converted naively, except nanoseconds itself,
// whose max() overflows the deadline now + max() instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

using every_integral_duration =
    std::tuple<std::chrono::nanoseconds, std::chrono::microseconds, std::chrono::milliseconds,
               std::chrono::seconds, std::chrono::minutes, std::chrono::hours, std::chrono::days,
               std::chrono::duration<int>, std::chrono::duration<std::uint64_t, std::milli>>;

// The values of D that mean "expired already": min(), zero() and minus one unit (for a signed rep;
// an unsigned rep's min() is its zero).
template <class D>
std::vector<D> expired_extremes() {
  std::vector<D> values{D::min(), D::zero()};
  if constexpr (std::is_signed_v<typename D::rep>) values.push_back(D(-1));
  return values;
}

using fp_seconds = std::chrono::duration<double>;

// Floating-point durations that mean "forever": max(), a huge finite value, +infinity.
inline std::vector<fp_seconds> forever_doubles() {
  return {fp_seconds::max(), fp_seconds(1e300),
          fp_seconds(std::numeric_limits<double>::infinity())};
}

// Floating-point durations that mean "expired already": min() (the lowest double), a huge negative
// value, -infinity, minus one second, zero, and NaN (documented as zero: expired already).
inline std::vector<fp_seconds> expired_doubles() {
  return {
      fp_seconds::min(), fp_seconds(-1e300), fp_seconds(-std::numeric_limits<double>::infinity()),
      fp_seconds(-1.0),  fp_seconds(0.0),    fp_seconds(std::numeric_limits<double>::quiet_NaN())};
}

inline std::string describe(fp_seconds d) { return std::to_string(d.count()) + " s"; }
template <class D>
std::string describe(D d) {
  return std::to_string(static_cast<long double>(d.count())) + " units";
}

}  // namespace weft_test
