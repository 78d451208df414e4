// examples/offload.cpp: blocking calls and CPU-bound work off the event loop: asyncio.to_thread /
// run_in_executor(None, ...) become weft::to_thread, and run_in_executor(ProcessPoolExecutor(),
// ...) for a CPU loop becomes weft::compute on the runtime's oneTBB arena. Docs:
// docs/patterns/offload.md.
//
// The seed guide's DON'T list, "Don't use async for CPU-bound work" and "Don't mix blocking and
// async code", each with its remedy. Both parts run on a runtime with ONE worker thread, and a
// heartbeat task ticks every 10 ms throughout: it keeps ticking because neither the blocking calls
// nor the CPU loop ever hold that worker.

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_reduce.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::offload {

using namespace std::chrono_literals;

namespace {

// A blocking library call (think requests.get): holds its thread for 300 ms.
std::string blocking_get(std::string url) {
  std::this_thread::sleep_for(300ms);
  return "200 OK from " + url;
}

// The CPU loop of the seed guide: sum(range(10_000_000)), here spread over the arena's threads.
std::int64_t cpu_intensive_sync() {
  return tbb::parallel_reduce(
      tbb::blocked_range<std::int64_t>(0, 10'000'000), std::int64_t{0},
      [](const tbb::blocked_range<std::int64_t>& r, std::int64_t sum) {
        for (std::int64_t i = r.begin(); i != r.end(); ++i)
          sum += i;
        return sum;
      },
      std::plus<>());
}

// Ticks every 10 ms until stopped; counts its ticks.
weft::task<void> heartbeat(std::atomic<bool>& stop, int& ticks) {
  while (!stop.load()) {
    co_await weft::sleep(10ms);
    ++ticks;
  }
}

// "Blocking I/O": three blocking calls at once through to_thread take 0.3 s, not 0.9 s.
weft::task<bool> blocking_io() {
  const stopwatch watch;
  std::vector<weft::task<std::string>> fetches;
  for (const char* url :
       {"https://api.example.com/a", "https://api.example.com/b", "https://api.example.com/c"}) {
    fetches.push_back([](std::string u) -> weft::task<std::string> {
      co_return co_await weft::to_thread(blocking_get, std::move(u));
    }(url));
  }
  const std::vector<std::string> pages = co_await weft::gather(std::move(fetches));
  const double took = watch.seconds();
  for (const auto& page : pages)
    std::printf("  %s\n", page.c_str());
  std::printf("blocking I/O: 3 blocking calls of 0.3 s via to_thread took %.2f s\n", took);
  co_return check(pages.size() == 3 && pages[1] == "200 OK from https://api.example.com/b",
                  "to_thread returns each call's result in order") &&
      check(took >= 0.3 && took < 0.8, "the three blocking calls overlap (about 0.3 s)");
}

// "CPU-Bound Work": the loop runs on the oneTBB arena; the awaiting task resumes with its result.
weft::task<bool> cpu_bound() {
  const stopwatch watch;
  const std::int64_t result = co_await weft::compute(cpu_intensive_sync);
  std::printf("CPU-bound: sum(range(10_000_000)) = %lld via compute in %.3f s\n",
              static_cast<long long>(result), watch.seconds());
  co_return check(result == 49'999'995'000'000LL, "compute returns the parallel_reduce's sum");
}

weft::task<bool> async_main() {
  std::atomic<bool> stop{false};
  int ticks = 0;
  auto beat = weft::spawn(heartbeat(stop, ticks));
  const stopwatch watch;
  const bool io_ok = co_await blocking_io();
  const bool cpu_ok = co_await cpu_bound();
  const double took = watch.seconds();
  stop.store(true);
  co_await beat;
  std::printf("heartbeat: %d ticks of 10 ms in %.2f s on the one worker meanwhile\n", ticks, took);
  co_return io_ok&& cpu_ok&& check(ticks >= static_cast<int>(took * 100 / 3),
                                   "the worker stayed free to tick");
}

}  // namespace

int run() {
  weft::runtime_options one_worker;
  one_worker.worker_threads = 1;
  return weft::run(async_main(), one_worker) ? 0 : 1;
}

}  // namespace examples::offload

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::offload::run(); }
#endif
