// examples/demo.cpp: weft_demo, the seed guide's patterns run one after another: async functions,
// async vs sync, gather, background tasks, wait, timeouts, cancellation, task groups, the common
// patterns (retry, batches, per-item timeouts), async context managers, async generators with
// comprehensions, locks and semaphores, the producer/consumer queue, an echo server on asyncio's
// streams, offloading blocking calls and CPU-bound work (to_thread, compute), and the aiohttp
// pattern (many URLs fetched at once, bounded by a semaphore, from a weft HTTP server). Each
// scenario is the run() of its examples/<name>.cpp, the same file that builds the program that runs
// it alone, compiled here with WEFT_EXAMPLE_NO_MAIN (scenarios.hpp declares the run() functions).
// Exits non-zero if any scenario got a wrong result.
#include <cstdio>
#include <iterator>

#include "example_support.hpp"
#include "scenarios.hpp"

int main() {
  struct scenario {
    const char* title;
    int (*run)();
  };
  const scenario scenarios[] = {
      {"Defining async functions", &examples::async_functions::run},
      {"Async vs sync", &examples::async_vs_sync::run},
      {"gather: variadic, list, return_exceptions", &examples::gather::run},
      {"spawn: background tasks (asyncio.create_task)", &examples::create_task::run},
      {"wait: all, first completed, timeout (asyncio.wait)", &examples::wait::run},
      {"timeout and wait_for (asyncio.timeout)", &examples::timeout::run},
      {"cancellation: basic, graceful, timeout, shield, many", &examples::cancellation::run},
      {"task groups and exception groups (TaskGroup, except*)", &examples::task_group::run},
      {"retry, batches, per-item timeouts, rate limiting", &examples::common_patterns::run},
      {"async context managers: class-based and resource<T>", &examples::async_with::run},
      {"async generators, iterators and comprehensions", &examples::generators::run},
      {"queue: producer and consumers (asyncio.Queue)", &examples::queue::run},
      {"locks, semaphores and barriers (asyncio.Lock, Semaphore, Barrier)", &examples::locks::run},
      {"streams: an echo server and clients (start_server, open_connection)", &examples::echo::run},
      {"offload: blocking calls and CPU-bound work (to_thread, compute)", &examples::offload::run},
      {"aiohttp: fetch many URLs bounded by a semaphore (http::client)",
       &examples::http_client::run},
  };

  const examples::stopwatch watch;
  int failed = 0;
  for (const scenario& s : scenarios) {
    std::printf("\n=== %s ===\n", s.title);
    std::fflush(stdout);
    if (s.run() != 0) {
      std::printf("=== %s: FAILED ===\n", s.title);
      ++failed;
    }
  }
  std::printf("\nweft_demo: %d of %zu scenarios passed in %.2f s\n",
              static_cast<int>(std::size(scenarios)) - failed, std::size(scenarios),
              watch.seconds());
  return failed == 0 ? 0 : 1;
}
