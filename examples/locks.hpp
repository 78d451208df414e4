// examples/locks.hpp: the seed guide's "Async lock" (critical_section) and "Async semaphore -
// Limit concurrent operations" (rate_limited_fetch), with simulated I/O (weft::sleep).
//
//   Python                                        weft
//   lock = asyncio.Lock()                         weft::mutex lock;
//   async with lock:                              { auto guard = co_await lock.lock();
//       await modify_shared_resource()              co_await modify_shared_resource(); }
//   semaphore = asyncio.Semaphore(5)              weft::semaphore semaphore(5);
//   async with semaphore:                         { auto permit = co_await semaphore.acquire();
//       return await fetch_data(url)                co_return co_await fetch_data(url); }
//
// critical_section runs 10 tasks that each do a read-modify-write of a shared counter with a
// simulated I/O wait in the middle: under the lock no update is lost, and the tasks take turns in
// the order they asked. rate_limited_fetch fetches 12 URLs (0.1 s each) with at most 5 at a time:
// it takes 3 rounds (about 0.3 s), and the peak of fetches in flight is exactly 5.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::locks {

using namespace std::chrono_literals;

// The shared resource: a counter whose update awaits I/O between the read and the write, so
// without the lock two tasks would read the same value and one update would be lost.
struct shared_resource {
  int value = 0;
  std::vector<int> turns;  // which task modified it, in order
};

inline weft::task<> modify_shared_resource(shared_resource& r, int who) {
  const int read = r.value;
  co_await weft::sleep(10ms);  // simulated I/O while "holding" the read value
  r.value = read + 1;
  r.turns.push_back(who);
}

// The seed's critical_section, for one task: only one task at a time runs the body.
inline weft::task<> critical_section(weft::mutex& lock, shared_resource& r, int who) {
  auto guard = co_await lock.lock();
  co_await modify_shared_resource(r, who);
}  // unlocked here, handed to the next task in line

inline weft::task<std::string> fetch_data(std::string url, std::atomic<int>& in_flight,
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
inline weft::task<std::vector<std::string>> rate_limited_fetch(std::vector<std::string> urls,
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

inline weft::task<bool> async_main() {
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
  co_return ok;
}

inline int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::locks
