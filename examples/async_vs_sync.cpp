// examples/async_vs_sync.cpp: time.sleep() against `await asyncio.sleep()`: blocking calls run one
// after another, coroutines overlap. Docs: docs/patterns/async-vs-sync.md.
//
// The seed guide's "Async vs Sync": three fetches of one second take three seconds when each blocks
// its thread, and one second when they are tasks that sleep at the same time. The async version
// runs on a runtime with a single worker thread, to show that the concurrency does not come from
// threads: a sleeping task holds no thread.

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::async_vs_sync {

using namespace std::chrono_literals;

namespace {

struct response {
  std::string url;
};

// Synchronous: blocks the calling thread for the whole second.
response sync_fetch(std::string url) {
  std::this_thread::sleep_for(1s);
  return {std::move(url)};
}

// Asynchronous: suspends this task for a second; its thread is free to run other tasks.
weft::task<response> async_fetch(std::string url) {
  co_await weft::sleep(1s);
  co_return response{std::move(url)};
}

// Takes 3 seconds: each call starts when the previous one has returned.
std::vector<response> sync_main() {
  std::vector<response> results;
  for (const char* url : {"url1", "url2", "url3"})
    results.push_back(sync_fetch(url));
  return results;
}

// Takes 1 second: the three tasks run concurrently.
weft::task<std::vector<response>> async_main() {
  std::vector<weft::task<response>> tasks;
  for (const char* url : {"url1", "url2", "url3"})
    tasks.push_back(async_fetch(url));
  co_return co_await weft::gather(std::move(tasks));
}

bool in_order(const std::vector<response>& results) {
  return results.size() == 3 && results[0].url == "url1" && results[1].url == "url2" &&
         results[2].url == "url3";
}

}  // namespace

int run() {
  const stopwatch sync_watch;
  const std::vector<response> sync_results = sync_main();
  const double sync_took = sync_watch.seconds();
  std::printf("sync:  %zu fetches of 1 s took %.2f s (one after another)\n", sync_results.size(),
              sync_took);

  weft::runtime_options one_worker;
  one_worker.worker_threads = 1;
  const stopwatch async_watch;
  const std::vector<response> async_results = weft::run(async_main(), one_worker);
  const double async_took = async_watch.seconds();
  std::printf("async: %zu fetches of 1 s took %.2f s (concurrently, on 1 worker thread)\n",
              async_results.size(), async_took);

  bool ok = check(in_order(sync_results), "sync: 3 responses in order");
  ok &= check(in_order(async_results), "async: 3 responses in order");
  ok &= check(sync_took >= 3.0, "sync: 3 blocking fetches take at least 3 s");
  // weft::run also starts and stops the runtime's threads, a matter of milliseconds.
  ok &= check(took_about(async_took, 1.0), "async: 3 concurrent fetches take about 1 s");
  return ok ? 0 : 1;
}

}  // namespace examples::async_vs_sync

// The program `async_vs_sync`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::async_vs_sync::run(); }
#endif
