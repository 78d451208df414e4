// examples/dump.cpp: where every task waits (runtime::dump) and what the pool did
// (runtime::counters, in Prometheus's text format). Docs: docs/diagnostics.md.
//
// A crawler fetches pages through a semaphore of two slots; one fetch is stuck (it waits for an
// event that nobody sets, as a request without a timeout would). While it hangs, the program
// prints the dump, as `kill -USR1 <pid>` would with runtime_options::dump_on_signal, and the
// counters a /metrics endpoint would serve.
//
//   Python                                        weft
//   for t in asyncio.all_tasks():                 std::fputs(rt.dump().to_string().c_str(),
//   stdout);
//       t.print_stack()
//   python -X dev (slow-callback warnings)        runtime_options::debug (and the dump's
//                                                 "running for" of each worker)
//   prometheus_client's generate_latest()         rt.counters().to_prometheus()
//
// The program exits non-zero if the dump does not show the stuck fetch's await chain.

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::dump {

weft::task<> fetch_one(weft::semaphore& slots, weft::event& never, int page) {
  auto slot = co_await slots.acquire();
  if (page == 3) co_await never.wait();  // the stuck request
  co_await weft::sleep(std::chrono::milliseconds(5));
}

weft::task<> fetch_all(weft::semaphore& slots, weft::event& never) {
  std::vector<weft::join_handle<void>> pages;
  for (int page = 0; page < 6; ++page)
    pages.push_back(weft::spawn_named("fetch_one", fetch_one(slots, never, page)));
  for (auto& p : pages)
    co_await std::move(p);
}

weft::task<> crawl(weft::semaphore& slots, weft::event& never) { co_await fetch_all(slots, never); }

int run() {
  weft::runtime_options options;  // not a designated list: g++ 12 warns about the fields after it
  options.worker_threads = 2;
  options.dump_on_signal = true;
  weft::runtime rt(options);
  weft::semaphore slots(2);
  weft::event never;
  auto crawler = rt.spawn_named("crawl", crawl(slots, never));

  // Let the other pages finish; the stuck one keeps its slot.
  weft::runtime_dump d;
  for (int i = 0; i < 200; ++i) {
    d = rt.dump();
    // crawl, and the stuck fetch_one once it waits on its event: right after the semaphore
    // woke it, it is still "ready" on its way there (TSan's slower run showed that moment).
    if (d.tasks.size() == 2 && d.to_string().find("waiting on event::wait") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string text = d.to_string();
  std::fputs(text.c_str(), stdout);
  bool ok = check(text.find("task 'crawl' waiting on join_handle") != std::string::npos,
                  "the crawler waits on a join");
  ok &= check(text.find("examples::dump::crawl -> examples::dump::fetch_all -> join_handle") !=
                  std::string::npos,
              "the crawler's await chain is shown");
  ok &= check(text.find("task 'fetch_one' waiting on event::wait") != std::string::npos,
              "the stuck fetch waits on its event");

  std::fputs(rt.counters().to_prometheus().c_str(), stdout);

  never.set();  // unstick it, and let everything end
  while (!crawler.done())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  crawler.take_result();
  return ok ? 0 : 1;
}

}  // namespace examples::dump

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::dump::run(); }
#endif
