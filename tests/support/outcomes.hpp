// tests/support/outcomes.hpp: how an await or a finished task ended, as a value a test can compare
// (CHECK(co_await how_it_ends(h) == ended::cancelled)), and the small sleeping helpers the tests
// that compare outcomes share.
//
// Each weft exception a test expects has its own outcome; any other exception is `failed`, so a
// test that allows some outcomes must list the ones it allows rather than exclude `failed`.
#pragma once

#include <chrono>
#include <ostream>

#include <weft/weft.hpp>

namespace weft_test {

enum class ended { value, cancelled, timed_out, shut_down, closed, dropped, failed };
inline constexpr int ended_kinds = static_cast<int>(ended::failed) + 1;

inline const char* describe(ended e) {
  switch (e) {
    case ended::value:
      return "value";
    case ended::cancelled:
      return "cancelled";
    case ended::timed_out:
      return "timed_out";
    case ended::shut_down:
      return "shut_down";
    case ended::closed:
      return "closed";
    case ended::dropped:
      return "dropped";
    case ended::failed:
      return "failed";
  }
  return "?";
}

// So that doctest prints a failed comparison by name.
inline std::ostream& operator<<(std::ostream& out, ended e) { return out << describe(e); }

// The outcome of the exception being handled; call only inside a catch block.
inline ended current_outcome() {
  try {
    throw;
  } catch (const weft::cancelled_error&) {
    return ended::cancelled;
  } catch (const weft::timeout_error&) {
    return ended::timed_out;
  } catch (const weft::queue_shut_down&) {
    return ended::shut_down;
  } catch (const weft::channel_closed&) {
    return ended::closed;
  } catch (const weft::oneshot_dropped&) {
    return ended::dropped;
  } catch (...) {
    return ended::failed;
  }
}

// How awaiting `awaitable` ends. Takes a reference: the caller's awaitable outlives the await.
template <class A>
weft::task<ended> how_it_ends(A&& awaitable) {
  try {
    (void)co_await static_cast<A&&>(awaitable);
    co_return ended::value;
  } catch (...) {
    co_return current_outcome();
  }
}

// How a finished handle ends, without awaiting.
template <class T>
ended result_of(weft::join_handle<T>& handle) {
  try {
    (void)handle.take_result();
    return ended::value;
  } catch (...) {
    return current_outcome();
  }
}

// Sleeps `d`, then returns `v`.
inline weft::task<int> sleep_then(std::chrono::milliseconds d, int v) {
  co_await weft::sleep(d);
  co_return v;
}

// On a virtual-time runtime, a sleep ends only when every worker is idle: every task spawned
// before it has run as far as it can (to its wait).
inline weft::task<> let_others_wait() { co_await weft::sleep(std::chrono::milliseconds(1)); }

// The runtime of the deterministic tests: one worker on the virtual clock, so a spawned task runs
// only when the test's task waits, and let_others_wait() takes no real time.
inline const weft::runtime_options one_worker{.worker_threads = 1, .virtual_time = true};

}  // namespace weft_test
