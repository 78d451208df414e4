// weft/scheduler/detail/duration.hpp: the one place where weft converts a caller's duration or
// time point to the clock's.
//
// std::chrono's conversions overflow silently (undefined behaviour for signed reps):
// ceil<nanoseconds>(hours::max()) wraps negative, so a timeout meant as "forever" expired at once.
// Every duration and time point weft takes goes through these helpers instead. The rules (also in
// docs/patterns/timeouts.md):
//   - rounding is up (ceil), so a sleep or timeout never ends before the time asked for; a
//     floating-point value within its type's rounding error of a whole nanosecond is that
//     nanosecond (duration<double>(0.1) is 100 ms, not 100 ms + 1 ns);
//   - a value beyond what the target type holds saturates to its max() or min():
//     sleep(hours::max()) sleeps forever, a deadline past clock::time_point::max() is max();
//   - negative durations, and deadlines in the past, mean "already expired" (callers treat them
//     as zero: sleep yields, a timeout expires at the work's first cancellation point);
//   - a floating-point duration that is NaN counts as zero (already expired): a NaN comes from a
//     computation gone wrong (0.0 / 0.0), and an immediate expiry shows it where "forever" would
//     hang silently; +inf and -inf saturate like any value out of range.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

#include <weft/scheduler/detail/timer_entry.hpp>

namespace weft::detail {

// `d` converted to `To` (an integral rep of at most 64 bits), rounded towards +infinity, clamped
// to [To::min(), To::max()]; NaN gives To::zero().
template <class To, class Rep, class Period>
constexpr To saturating_ceil(std::chrono::duration<Rep, Period> d) noexcept {
  using to_rep = typename To::rep;
  static_assert(std::is_integral_v<to_rep> && sizeof(to_rep) <= 8, "a 64-bit integral target");
  // Target units per source unit, reduced: the exact result is count * num / den.
  using ratio = std::ratio_divide<Period, typename To::period>;
  constexpr to_rep hi = std::numeric_limits<to_rep>::max();
  constexpr to_rep lo = std::numeric_limits<to_rep>::min();
  if constexpr (std::is_floating_point_v<Rep>) {
    const long double exact = static_cast<long double>(d.count()) *
                              static_cast<long double>(ratio::num) /
                              static_cast<long double>(ratio::den);
    if (std::isnan(exact)) return To::zero();
    // hi + 1 and lo are powers of two, exact in long double (and in double, where long double is
    // double). Below hi + 1, ceil() stays <= hi: where a long double's spacing exceeds 1 every
    // value is an integer already.
    if (exact >= static_cast<long double>(hi) + 1.0L) return To::max();
    if (exact <= static_cast<long double>(lo)) return To::min();
    // A value within Rep's rounding error of a whole unit is that unit: 0.1 s as a double is
    // 0.1000000000000000055 s, and rounding that up would make sleep(0.1s) last 100 ms + 1 ns (a
    // whole extra tick of the timer wheel).
    const long double nearest = std::nearbyint(exact);
    const long double slack =
        std::fabs(exact) * 4 * static_cast<long double>(std::numeric_limits<Rep>::epsilon());
    if (std::fabs(exact - nearest) <= slack) return To(static_cast<to_rep>(nearest));
    return To(static_cast<to_rep>(std::ceil(exact)));
  } else if constexpr (std::is_integral_v<Rep> && sizeof(Rep) <= 8) {
    // |count| < 2^64 and num < 2^63, so the product fits in 128 bits exactly.
    // __extension__: g++ and clang accept __int128 under -Wpedantic only marked so, and this
    // header is installed (a user's -Wpedantic -Werror build includes it).
    __extension__ using wide = __int128;
    const wide product = static_cast<wide>(d.count()) * ratio::num;
    wide quotient = product / ratio::den;      // truncates towards zero...
    if (product % ratio::den > 0) ++quotient;  // ...which is the ceiling below zero, not above
    if (quotient > hi) return To::max();
    if (quotient < lo) return To::min();
    return To(static_cast<to_rep>(quotient));
  } else {
    // A user-defined or wider rep: std::chrono's own conversion (no saturation possible here).
    return std::chrono::ceil<To>(d);
  }
}

// `d` in the clock's units (nanoseconds), rounded up, saturated; see the file comment.
template <class Rep, class Period>
constexpr clock::duration saturating_ceil_ns(std::chrono::duration<Rep, Period> d) noexcept {
  return saturating_ceil<clock::duration>(d);
}

// at + after, clamped to [clock::time_point::min(), clock::time_point::max()].
constexpr clock::time_point saturating_add(clock::time_point at, clock::duration after) noexcept {
  const clock::rep base = at.time_since_epoch().count();
  const clock::rep step = after.count();
  clock::rep sum = 0;
  if (__builtin_add_overflow(base, step, &sum)) {
    return step > 0 ? clock::time_point::max() : clock::time_point::min();
  }
  return clock::time_point(clock::duration(sum));
}

// The deadline `after` from `now`: saturated, so that a duration of max() means "never".
template <class Rep, class Period>
constexpr clock::time_point saturating_deadline(clock::time_point now,
                                                std::chrono::duration<Rep, Period> after) noexcept {
  return saturating_add(now, saturating_ceil_ns(after));
}

}  // namespace weft::detail
