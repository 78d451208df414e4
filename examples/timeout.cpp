// examples/timeout.cpp: asyncio.timeout() and asyncio.wait_for(): a deadline on awaited work,
// cancelling it on expiry. Docs: docs/patterns/timeouts.md.
//
// The seed guide's "Async Context Manager with Timeout": the async_timeout helper that logs and
// re-raises a timeout, its Python < 3.11 form with asyncio.wait_for, and fetch_with_timeout. Each
// form runs a fetch that finishes in time and one that does not. A last round shows that a timeout
// cancelled from outside reports the cancellation, not a timeout.
//
// C++ has no `async with`: a scope cannot run code when the coroutine inside it is cancelled and
// resumes. So weft's timeout wraps the awaited work instead of a block:
//
//   Python                                        weft
//   async with asyncio.timeout(5.0):              co_await weft::timeout(5s, work)
//       return await work
//   await asyncio.wait_for(work, timeout=5.0)     co_await weft::wait_for(work, 5s)
//   except asyncio.TimeoutError                   catch (const weft::timeout_error&)

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::timeout {

using namespace std::chrono_literals;

namespace {

struct page {
  std::string url;
  std::string data;
};

// Connections that a cancelled fetch closed (its cleanup ran to the end).
std::atomic<int> connections_closed{0};

// A request with `latency` of simulated I/O. When cancelled (by an expired timeout), it closes
// its connection, which itself takes a little I/O, before the cancellation goes on. C++ does not
// allow co_await inside a catch handler, so the handler only keeps the exception; the cleanup
// runs after it.
weft::task<page> fetch_data(std::string url, std::chrono::milliseconds latency) {
  std::exception_ptr cancelled;
  try {
    co_await weft::sleep(latency);
    co_return page{std::move(url), "..."};
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  co_await weft::sleep(100ms);  // close the connection
  ++connections_closed;
  std::printf("    %s: cancelled, connection closed\n", url.c_str());
  std::rethrow_exception(cancelled);
}

// The seed's async_timeout context manager: run `work` under a deadline, log a timeout and re-raise
// it. weft::timeout cancels `work` on expiry, waits for its cleanup, then throws timeout_error.
template <class T>
weft::task<T> async_timeout(std::chrono::milliseconds seconds, weft::task<T> work) {
  try {
    co_return co_await weft::timeout(seconds, std::move(work));
  } catch (const weft::timeout_error&) {
    std::printf("    ERROR Operation timed out after %.1f seconds\n", seconds.count() / 1000.0);
    throw;
  }
}

// For Python < 3.11: the same with asyncio.wait_for, whose argument order weft::wait_for keeps.
template <class T>
weft::task<T> with_timeout_legacy(weft::task<T> coro, std::chrono::milliseconds seconds) {
  try {
    co_return co_await weft::wait_for(std::move(coro), seconds);
  } catch (const weft::timeout_error&) {
    std::printf("    ERROR Operation timed out after %.1f seconds\n", seconds.count() / 1000.0);
    throw;
  }
}

// Usage: the seed's fetch_with_timeout, with a 1 s limit instead of 5 s.
weft::task<page> fetch_with_timeout(std::string url, std::chrono::milliseconds latency) {
  co_return co_await async_timeout(1000ms, fetch_data(std::move(url), latency));
}

// What a timed call ended with, and when.
struct attempt {
  std::string result;  // the URL fetched or "timeout_error"
  double took = 0;
};

weft::task<attempt> timed(weft::task<page> work) {
  const stopwatch watch;
  attempt a;
  try {
    a.result = (co_await std::move(work)).url;
  } catch (const weft::timeout_error&) {
    a.result = "timeout_error";
  }
  a.took = watch.seconds();
  std::printf("  -> %s after %.2f s\n", a.result.c_str(), a.took);
  co_return a;
}

weft::task<bool> async_main() {
  bool ok = true;
  connections_closed = 0;

  std::printf("async_timeout(1s, fetch of 0.3 s):\n");
  attempt a = co_await timed(fetch_with_timeout("https://api.example.com", 300ms));
  ok &= check(a.result == "https://api.example.com", "a fetch within the limit returns its page");
  ok &= check(took_about(a.took, 0.3), "and takes its own time (0.3 s)");

  std::printf("async_timeout(1s, fetch of 5 s):\n");
  a = co_await timed(fetch_with_timeout("https://slow.example.com", 5000ms));
  ok &= check(a.result == "timeout_error", "a fetch over the limit ends in timeout_error");
  ok &= check(connections_closed == 1, "the fetch's cleanup ran before timeout_error arrived");
  ok &= check(took_about(a.took, 1.1), "the limit (1 s) plus the fetch's cleanup (0.1 s)");

  std::printf("with_timeout_legacy(fetch of 0.3 s, 1s):\n");
  a = co_await timed(with_timeout_legacy(fetch_data("https://api.example.com", 300ms), 1000ms));
  ok &= check(a.result == "https://api.example.com", "wait_for: the fetch within the limit");
  ok &= check(took_about(a.took, 0.3), "wait_for: takes the fetch's time (0.3 s)");

  std::printf("with_timeout_legacy(fetch of 5 s, 1s):\n");
  a = co_await timed(with_timeout_legacy(fetch_data("https://slow.example.com", 5000ms), 1000ms));
  ok &= check(a.result == "timeout_error", "wait_for: the fetch over the limit times out");
  ok &= check(connections_closed == 2, "wait_for: the fetch's cleanup ran");
  ok &= check(took_about(a.took, 1.1), "wait_for: the limit plus the cleanup");

  // Only the cancellation that the timeout caused becomes timeout_error. A task cancelled from
  // outside while it waits under a timeout sees cancelled_error, as Python's asyncio.timeout does.
  std::printf("fetch_with_timeout, the task cancelled from outside after 0.2 s:\n");
  const stopwatch watch;
  weft::join_handle<page> handle =
      weft::spawn(fetch_with_timeout("https://slow.example.com", 5000ms));
  co_await weft::sleep(200ms);
  handle.cancel();
  std::string ended = "a page";
  try {
    (void)co_await handle;
  } catch (const weft::timeout_error&) {
    ended = "timeout_error";
  } catch (const weft::cancelled_error&) {
    ended = "cancelled_error";  // the task's own cancellation, rethrown by awaiting its handle
  }
  const double took = watch.seconds();
  std::printf("  -> %s after %.2f s\n", ended.c_str(), took);
  ok &= check(ended == "cancelled_error", "an outside cancel stays cancelled_error");
  ok &= check(took >= 0.3 && took < 0.9, "it ends after the cleanup, long before the limit");
  co_return ok;
}

}  // namespace

// An explicit runtime, so that its counters can be read afterwards: no timer is left behind,
// neither by the timeouts that did not expire nor by the cancelled sleeps.
int run() {
  weft::runtime rt;
  bool ok = rt.block_on(async_main());
  const weft::runtime_stats stats = rt.stats();
  std::printf("timers left in the timer wheel: %llu\n",
              static_cast<unsigned long long>(stats.timers));
  ok &= check(stats.timers == 0, "no timer is left armed");
  return ok ? 0 : 1;
}

}  // namespace examples::timeout

// The program `timeout`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::timeout::run(); }
#endif
