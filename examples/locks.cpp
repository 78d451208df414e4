// examples/locks.cpp: asyncio.Lock, asyncio.Semaphore and asyncio.Barrier: mutual exclusion,
// bounded concurrency, lockstep. Docs: docs/patterns/locks-and-semaphores.md.
//
// The seed guide's "Async lock" (critical_section) and "Async semaphore - Limit concurrent
// operations" (rate_limited_fetch), with simulated I/O (weft::sleep).
//
//   Python                                        weft
//   lock = asyncio.Lock()                         weft::mutex lock;
//   async with lock:                              { auto guard = co_await lock.lock();
//       await modify_shared_resource()              co_await modify_shared_resource(); }
//   semaphore = asyncio.Semaphore(5)              weft::semaphore semaphore(5);
//   async with semaphore:                         { auto permit = co_await semaphore.acquire();
//       return await fetch_data(url)                co_return co_await fetch_data(url); }
//   barrier = asyncio.Barrier(3)                  weft::barrier barrier(3);
//   index = await barrier.wait()                  std::size_t index = co_await barrier.wait();
//
// critical_section runs 10 tasks that each do a read-modify-write of a shared counter with a
// simulated I/O wait in the middle: under the lock no update is lost, and the tasks take turns in
// the order they asked. rate_limited_fetch fetches 12 URLs (0.1 s each) with at most 5 at a time:
// it takes 3 rounds (about 0.3 s), and the peak of fetches in flight is exactly 5. lockstep runs
// 3 workers through 4 steps of uneven length (10, 20, 30 ms) that meet at a barrier after each
// step: no worker starts a step before all finished the one before, so it takes 4 x 30 ms.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::locks {

using namespace std::chrono_literals;

namespace {

// The shared resource: a counter whose update awaits I/O between the read and the write, so
// without the lock two tasks would read the same value and one update would be lost.
struct shared_resource {
  int value = 0;
  std::vector<int> turns;  // which task modified it, in order
};

weft::task<> modify_shared_resource(shared_resource& r, int who) {
  const int read = r.value;
  co_await weft::sleep(10ms);  // simulated I/O while "holding" the read value
  r.value = read + 1;
  r.turns.push_back(who);
}

// The seed's critical_section, for one task: only one task at a time runs the body.
weft::task<> critical_section(weft::mutex& lock, shared_resource& r, int who) {
  auto guard = co_await lock.lock();
  co_await modify_shared_resource(r, who);
}  // unlocked here; the first task in line is woken and takes it

weft::task<std::string> fetch_data(std::string url, std::atomic<int>& in_flight,
                                   std::atomic<int>& peak) {
  const int now = ++in_flight;
  int seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
  co_await weft::sleep(100ms);  // simulated network I/O
  --in_flight;
  co_return "data from " + url;
}

// The seed's rate_limited_fetch: gather over all URLs, at most max_concurrent in flight.
weft::task<std::vector<std::string>> rate_limited_fetch(std::vector<std::string> urls,
                                                        std::size_t max_concurrent,
                                                        std::atomic<int>& peak) {
  weft::semaphore semaphore(max_concurrent);
  std::atomic<int> in_flight{0};
  auto fetch_with_semaphore = [&](std::string url) -> weft::task<std::string> {
    auto permit = co_await semaphore.acquire();
    co_return co_await fetch_data(std::move(url), in_flight, peak);
  };
  std::vector<weft::task<std::string>> tasks;
  for (std::string& url : urls)
    tasks.push_back(fetch_with_semaphore(url));
  co_return co_await weft::gather(std::move(tasks));
}

// One of the lockstep workers: `steps` steps of simulated work, meeting the others after each.
// The barrier's completion function (set by the caller) runs once per step, before anyone goes on.
weft::task<> lockstep_worker(weft::barrier& step_done, int who, int steps,
                             std::atomic<int>& steps_started, std::atomic<int>& mixed) {
  for (int step = 0; step < steps; ++step) {
    // A worker that runs ahead of the barrier would start step k before step k - 1 completed.
    if (steps_started.fetch_add(1) / static_cast<int>(step_done.parties()) != step) ++mixed;
    co_await weft::sleep(std::chrono::milliseconds(10 * (who + 1)));  // uneven simulated work
    co_await step_done.wait();
  }
}

weft::task<bool> async_main() {
  bool ok = true;

  std::printf("critical_section: 10 tasks update a shared counter with I/O in between\n");
  {
    const stopwatch watch;
    weft::mutex lock;
    shared_resource r;
    std::vector<weft::task<>> tasks;
    for (int who = 0; who < 10; ++who)
      tasks.push_back(critical_section(lock, r, who));
    co_await weft::gather(std::move(tasks));
    const double took = watch.seconds();
    std::printf("  counter = %d after %.2f s (10 x 10 ms, one at a time)\n", r.value, took);
    ok &= check(r.value == 10, "no update was lost under the lock");
    ok &= check(took >= 0.1, "the critical sections did not overlap");
    ok &= check(!lock.locked(), "the lock is free at the end");
  }

  std::printf("rate_limited_fetch: 12 URLs of 0.1 s each, max_concurrent = 5\n");
  {
    const stopwatch watch;
    std::vector<std::string> urls;
    for (int i = 0; i < 12; ++i)
      urls.push_back("https://api.example.com/item/" + std::to_string(i));
    std::atomic<int> peak{0};
    const std::vector<std::string> pages = co_await rate_limited_fetch(urls, 5, peak);
    const double took = watch.seconds();
    std::printf("  %zu pages, at most %d in flight, %.2f s\n", pages.size(), peak.load(), took);
    ok &= check(pages.size() == 12 && pages[11] == "data from " + urls[11],
                "every page came back, in input order");
    ok &= check(peak.load() == 5, "never more than 5 fetches at a time");
    ok &= check(took_about(took, 0.3), "3 rounds of 0.1 s (12 URLs / 5 at a time)");
  }

  std::printf("lockstep: 3 workers, 4 steps of 10/20/30 ms, a barrier after each step\n");
  {
    const stopwatch watch;
    int steps_done = 0;
    weft::barrier step_done(3, [&] { ++steps_done; });  // once per step, before the release
    std::atomic<int> steps_started{0};
    std::atomic<int> mixed{0};
    std::vector<weft::task<>> workers;
    for (int who = 0; who < 3; ++who)
      workers.push_back(lockstep_worker(step_done, who, 4, steps_started, mixed));
    co_await weft::gather(std::move(workers));
    const double took = watch.seconds();
    std::printf("  %d steps completed in %.2f s\n", steps_done, took);
    ok &= check(steps_done == 4, "the completion ran once per step");
    ok &= check(mixed.load() == 0, "no worker started a step before the others finished theirs");
    ok &= check(took_about(took, 0.12), "each step took as long as its slowest worker (30 ms)");
  }
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::locks

// The program `locks`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::locks::run(); }
#endif
