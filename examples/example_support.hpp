// examples/example_support.hpp: the small helpers the example programs share: a stopwatch, check()
// (which prints what went wrong, so a wrong result becomes a failing exit status), message_of()
// (the text of an exception held in an std::exception_ptr) and is_cancelled().
#pragma once

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <weft/weft.hpp>

namespace examples {

// Seconds since construction, on the same steady clock that weft::sleep uses.
class stopwatch {
 public:
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Returns `ok`; when it is false, says on stderr which expectation failed.
inline bool check(bool ok, const char* expectation) {
  if (!ok) std::fprintf(stderr, "FAILED: %s\n", expectation);
  return ok;
}

// A timing expectation that depends on the machine: printed when missed, never a failure. Real-time
// bounds tighter than the generous took_about() fail on a loaded machine (CI runs the examples
// under ThreadSanitizer on two shared cores); the benchmarks measure them instead.
inline bool note_timing(bool ok, const char* expectation) {
  if (!ok)
    std::fprintf(stderr, "note: missed on this machine (timing, not judged): %s\n", expectation);
  return true;
}

// Timing bounds. A weft::sleep never ends early, so the lower bound is exact; the upper bound is
// generous because other programs may share the machine, yet still far below what running the
// sleeps one after another would take.
inline bool took_about(double seconds, double expected) {
  return seconds >= expected && seconds < expected + 0.9;
}

// The message of the exception in `error` (Python's str(exception)). weft::cancelled_error needs
// its own case: it does not derive from std::exception (docs/cancellation.md says why).
inline std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (const weft::cancelled_error& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// True if `error` holds a weft::cancelled_error (Python: isinstance(e, CancelledError)).
inline bool is_cancelled(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const weft::cancelled_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace examples
