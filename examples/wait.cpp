// examples/wait.cpp: asyncio.wait(): wait for a set of tasks until all, the first or the first
// failing one is done, or a timeout. Docs: docs/patterns/wait.md.
//
// The seed guide's "asyncio.wait()": fetches spawned as tasks, waited for in the three ways the
// seed shows: all of them, the first to complete, and with a timeout, after which the pending ones
// are cancelled. A fourth round shows first_exception. Each fetch simulates its own latency with
// weft::sleep; the latencies are shorter than the seed's 5 s timeout so that the example runs in a
// few seconds.
//
//   Python                                        weft
//   done, pending = await asyncio.wait(tasks)     auto [done, pending] = co_await weft::wait(
//                                                     std::move(handles));
//   return_when=asyncio.FIRST_COMPLETED           weft::first_completed
//   timeout=5.0                                   std::optional<clock::duration>, e.g. 5s
//   for task in pending: task.cancel()            for (auto& h : pending) h.cancel();

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::wait {

using namespace std::chrono_literals;

namespace {

struct page {
  std::string url;
  std::string data;
};

// One request: `latency` of simulated I/O, then the page, or an error for a URL that contains
// "unreachable".
weft::task<page> fetch_data(std::string url, std::chrono::milliseconds latency) {
  co_await weft::sleep(latency);
  if (url.find("unreachable") != std::string::npos) {
    throw std::runtime_error("cannot connect to " + url);
  }
  co_return page{std::move(url), "..."};
}

struct request {
  std::string url;
  std::chrono::milliseconds latency;
};

// asyncio.wait takes tasks, not coroutines: spawn each fetch first (they start running now).
std::vector<weft::join_handle<page>> spawn_fetches(const std::vector<request>& requests) {
  std::vector<weft::join_handle<page>> tasks;
  for (const request& r : requests)
    tasks.push_back(weft::spawn(fetch_data(r.url, r.latency)));
  return tasks;
}

// Prints each finished task's page or error; returns how many failed. Awaiting a handle that is
// done returns at once.
weft::task<std::size_t> report(std::vector<weft::join_handle<page>>& done) {
  std::size_t failed = 0;
  for (auto& task : done) {
    try {
      const page result = co_await task;
      std::printf("    done: %s\n", result.url.c_str());
    } catch (const std::exception& e) {
      std::printf("    failed: %s\n", e.what());
      ++failed;
    }
  }
  co_return failed;
}

weft::task<bool> async_main() {
  bool ok = true;
  const std::vector<request> requests = {
      {"https://a.example.com", 300ms},
      {"https://b.example.com", 600ms},
      {"https://c.example.com", 900ms},
  };

  // Wait for all tasks (the default, weft::all_completed).
  {
    stopwatch watch;
    auto [done, pending] = co_await weft::wait(spawn_fetches(requests));
    const double took = watch.seconds();
    std::printf("wait(all_completed): %zu done, %zu pending after %.2f s\n", done.size(),
                pending.size(), took);
    ok &= check(co_await report(done) == 0, "every fetch succeeded");
    ok &= check(done.size() == 3 && pending.empty(), "all_completed: every task is done");
    ok &= check(took_about(took, 0.9), "all_completed waits for the slowest fetch (0.9 s)");
  }

  // Wait for the first task to complete; then, as asyncio.as_completed would, keep waiting for
  // the next one until none is pending.
  {
    stopwatch watch;
    std::vector<weft::join_handle<page>> pending = spawn_fetches(requests);
    int round = 0;
    while (!pending.empty()) {
      auto result = co_await weft::wait(std::move(pending), weft::first_completed);
      const double took = watch.seconds();
      std::printf("wait(first_completed) #%d: %zu done, %zu pending after %.2f s\n", ++round,
                  result.done.size(), result.pending.size(), took);
      ok &= check(co_await report(result.done) == 0, "every fetch succeeded");
      if (round == 1) {
        ok &= check(result.done.size() == 1 && result.pending.size() == 2,
                    "first_completed returns as soon as one task is done");
        ok &= check(took_about(took, 0.3), "the first fetch completes after 0.3 s");
      }
      pending = std::move(result.pending);
    }
    ok &= check(round == 3, "the three fetches complete one by one");
  }

  // Wait with a timeout, then cancel the pending tasks. wait itself cancels nothing.
  {
    stopwatch watch;
    const std::vector<request> slow = {
        {"https://a.example.com", 300ms},
        {"https://b.example.com", 600ms},
        {"https://slow.example.com", 5s},
        {"https://slower.example.com", 8s},
    };
    auto [done, pending] = co_await weft::wait(spawn_fetches(slow), weft::all_completed, 1s);
    const double took = watch.seconds();
    std::printf("wait(timeout=1s): %zu done, %zu pending after %.2f s\n", done.size(),
                pending.size(), took);
    ok &= check(co_await report(done) == 0, "the fast fetches succeeded");
    ok &= check(done.size() == 2 && pending.size() == 2, "the timeout left the slow ones pending");
    ok &= check(took_about(took, 1.0), "wait returns when its timeout expires (1 s)");

    // Cancel pending tasks, then wait for the cancellations to complete (a cancelled task still
    // runs its cleanup; waiting makes sure none is left running).
    for (auto& task : pending)
      task.cancel();
    watch = stopwatch();
    auto cancelled = co_await weft::wait(std::move(pending));
    std::size_t cancelled_count = 0;
    for (auto& task : cancelled.done)
      cancelled_count += task.cancelled() ? 1 : 0;
    std::printf("cancelled %zu pending tasks in %.3f s\n", cancelled_count, watch.seconds());
    ok &= check(cancelled_count == 2, "the pending tasks ended cancelled");
    ok &= check(watch.seconds() < 0.5, "cancel() interrupts the fetches at once");
  }

  // first_exception: returns when a task fails (or when all are done).
  {
    stopwatch watch;
    const std::vector<request> failing = {
        {"https://a.example.com", 300ms},
        {"https://unreachable.example.com", 600ms},
        {"https://slow.example.com", 5s},
    };
    auto [done, pending] = co_await weft::wait(spawn_fetches(failing), weft::first_exception);
    const double took = watch.seconds();
    std::printf("wait(first_exception): %zu done, %zu pending after %.2f s\n", done.size(),
                pending.size(), took);
    ok &= check(co_await report(done) == 1, "one of the done fetches failed");
    ok &= check(done.size() == 2 && pending.size() == 1, "the slow fetch is still pending");
    ok &= check(took_about(took, 0.6), "first_exception returns at the failure (0.6 s)");
    co_await weft::cancel_all(pending);  // cancel and wait, as above, in one call
    ok &= check(pending.front().cancelled(), "the pending fetch ended cancelled");
  }
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::wait

// The program `wait`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::wait::run(); }
#endif
