// examples/async_functions.cpp: `async def`, `await` and asyncio.run(): define a coroutine, await
// it, run it from main. Docs: docs/patterns/async-functions.md.
//
// The seed guide's "Defining Async Functions": an async function that fetches a URL (simulated I/O:
// one second of weft::sleep), awaited from async_main, which weft::run runs from main().
//
//   Python                                  weft
//   async def fetch_data(url) -> dict:      weft::task<page> fetch_data(std::string url)
//   await asyncio.sleep(1)                  co_await weft::sleep(1s);
//   result = await fetch_data(url)          page result = co_await fetch_data(url);
//   asyncio.run(main())                     weft::run(async_main())

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::async_functions {

using namespace std::chrono_literals;

namespace {

// What the Python version returns as {"url": url, "data": "..."}.
struct page {
  std::string url;
  std::string data;
};

// The URL is taken by value: a task runs later than the call that creates it, so a reference
// parameter could outlive its argument, while a value is kept in the task's frame. A URL that
// contains "unreachable" fails after the same delay (gather.cpp has a copy and uses that).
weft::task<page> fetch_data(std::string url) {
  co_await weft::sleep(1s);  // this task waits; its worker thread runs other tasks meanwhile
  if (url.find("unreachable") != std::string::npos) {
    throw std::runtime_error("cannot connect to " + url);
  }
  co_return page{std::move(url), "..."};
}

weft::task<bool> async_main() {
  const stopwatch watch;
  // co_await starts fetch_data and resumes here with its value (or rethrows its exception).
  const page result = co_await fetch_data("https://api.example.com");
  const double took = watch.seconds();

  std::printf("{'url': '%s', 'data': '%s'}\n", result.url.c_str(), result.data.c_str());
  std::printf("1 fetch of 1 s took %.2f s\n", took);
  bool ok = check(result.url == "https://api.example.com", "the page of the requested URL");
  ok &= check(took_about(took, 1.0), "one fetch of 1 s takes about 1 s");
  co_return ok;
}

}  // namespace

// asyncio.run(main()): creates a runtime, runs async_main to completion on it, destroys it.
int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::async_functions

// The program `async_functions`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::async_functions::run(); }
#endif
