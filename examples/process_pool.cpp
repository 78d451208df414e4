// examples/process_pool.cpp: the seed guide's "CPU-Bound Work" (ProcessPoolExecutor with
// run_in_executor) on weft::process_pool. Docs: docs/patterns/process-pool.md.
//
// Three things, each checked: a CPU-bound sum runs in worker processes while a ticker task on the
// event loop keeps ticking; pool.map splits a batch over the workers and returns the results in
// input order; and a worker that crashes fails only the call it was running, where Python's
// ProcessPoolExecutor would break as a whole (BrokenProcessPool).
//
//   Python                                             weft
//   def cpu_intensive_sync(n): ...                     WEFT_PROCESS_FUNCTION(cpu_intensive, ...)
//   with ProcessPoolExecutor() as pool:                weft::process_pool pool;
//     await loop.run_in_executor(pool, f, n)           co_await pool.call(cpu_intensive, n)
//     pool.map(f, items, chunksize=64)                 co_await pool.map(f, items, 64)
//
// Not part of weft_demo: main() must enter worker mode first (serve_if_worker), since the workers
// are this very program started again.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

using namespace std::chrono_literals;

// The seed's cpu_intensive: a loop that would hold the event loop for its whole run.
WEFT_PROCESS_FUNCTION(cpu_intensive, [](std::int64_t n) {
  std::int64_t result = 0;
  for (std::int64_t i = 0; i < n; ++i)
    result += i;
  return result;
});

WEFT_PROCESS_FUNCTION(collatz_steps, [](std::int64_t n) {
  std::int64_t steps = 0;
  for (; n != 1; ++steps)
    n = n % 2 == 0 ? n / 2 : 3 * n + 1;
  return steps;
});

// A bug in native code: a crash that would take a thread pool (or the whole program) down.
WEFT_PROCESS_FUNCTION(buggy, [](int) -> int {
  std::raise(SIGSEGV);
  return 0;
});

namespace {

weft::task<int> async_main() {
  weft::process_pool_options options;
  options.workers = 2;
  weft::process_pool pool(options);
  bool ok = true;

  // 1. CPU-bound work off the event loop: the ticker keeps running meanwhile.
  int ticks = 0;
  auto ticker = weft::spawn([&ticks]() -> weft::task<> {
    for (;;) {
      co_await weft::sleep(10ms);
      ++ticks;
    }
  });
  const std::int64_t n = 200'000'000;
  examples::stopwatch watch;
  auto [a, b] = co_await weft::gather(pool.call(cpu_intensive, n), pool.call(cpu_intensive, n));
  ticker.cancel();
  std::printf("two sums of %lld in worker processes: %lld (%.2f s), the ticker ticked %d times\n",
              static_cast<long long>(n), static_cast<long long>(a), watch.seconds(), ticks);
  ok &= examples::check(a == n * (n - 1) / 2 && b == a, "the sums are right");
  ok &= examples::check(ticks > 0 || watch.seconds() < 0.02, "the event loop kept running");

  // 2. A batch in chunks, results in input order.
  std::vector<std::int64_t> numbers;
  for (std::int64_t i = 1; i <= 10'000; ++i)
    numbers.push_back(i);
  auto steps = co_await pool.map(collatz_steps, numbers, 500);
  std::printf("collatz steps of 1..10000 in chunks of 500: 27 takes %lld, 9999 takes %lld\n",
              static_cast<long long>(steps[26]), static_cast<long long>(steps[9998]));
  ok &= examples::check(steps.size() == numbers.size() && steps[26] == 111 && steps[0] == 0,
                        "map returns the results in input order");

  // 3. A crash fails only its own call; the pool replaces the worker and goes on.
  try {
    co_await pool.call(buggy, 0);
    ok &= examples::check(false, "the crashing call fails");
  } catch (const weft::worker_crashed& e) {
    std::printf("the crash failed only its call: %s\n", e.what());
  }
  ok &= examples::check(co_await pool.call(cpu_intensive, 10) == 45, "the pool still serves");

  co_await pool.close();  // waits for running calls, then reaps every worker
  co_return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  weft::process_pool::serve_if_worker(argc, argv);  // a worker serves here and never returns
  return weft::run(async_main());
}
