// examples/gather.cpp: asyncio.gather(): run several awaitables concurrently and wait for all of
// them. Docs: docs/patterns/gather.md.
//
// The seed guide's "asyncio.gather()": three fetches awaited together (a tuple), a list of fetches
// (a vector), and a list with failures, first as the exception gather rethrows, then with
// weft::return_exceptions (an outcome per fetch). fetch_data is async_functions.cpp's, repeated
// here so that this file reads on its own: one second of simulated I/O, failing for URLs that
// contain "unreachable".
//
//   Python                                        weft
//   await asyncio.gather(a, b, c)                 co_await weft::gather(std::move(a), ...)
//                                                     -> std::tuple, in argument order
//   await asyncio.gather(*tasks)                  co_await weft::gather(std::move(tasks))
//                                                     -> std::vector, in the list's order
//   gather(*tasks, return_exceptions=True)        weft::gather(weft::return_exceptions, ...)
//                                                     -> weft::outcome<T> per task

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::gather {

using namespace std::chrono_literals;

namespace {

// What the Python version returns as {"url": url, "data": "..."}.
struct page {
  std::string url;
  std::string data;
};

// async_functions.cpp's fetch_data: one second of simulated I/O. A URL that contains
// "unreachable" fails after the same delay.
weft::task<page> fetch_data(std::string url) {
  co_await weft::sleep(1s);
  if (url.find("unreachable") != std::string::npos) {
    throw std::runtime_error("cannot connect to " + url);
  }
  co_return page{std::move(url), "..."};
}

// Run multiple tasks concurrently: the results come back as a tuple, in argument order.
weft::task<std::tuple<page, page, page>> fetch_all_data() {
  // Create multiple tasks. A task is lazy: nothing has run yet.
  weft::task<page> task1 = fetch_data("https://api1.example.com");
  weft::task<page> task2 = fetch_data("https://api2.example.com");
  weft::task<page> task3 = fetch_data("https://api3.example.com");

  // gather starts all three and waits for all of them. Tasks are move-only, hence std::move.
  co_return co_await weft::gather(std::move(task1), std::move(task2), std::move(task3));
}

// With a list: the results come back as a vector, in the list's order.
weft::task<std::vector<page>> fetch_multiple_urls(std::vector<std::string> urls) {
  std::vector<weft::task<page>> tasks;
  for (const std::string& url : urls)
    tasks.push_back(fetch_data(url));
  co_return co_await weft::gather(std::move(tasks));
}

// Handle exceptions: with weft::return_exceptions, each fetch gives a weft::outcome<page> that
// holds its page or its exception, and gather itself throws nothing. Returns the failures.
weft::task<std::size_t> fetch_with_error_handling(std::vector<std::string> urls) {
  std::vector<weft::task<page>> tasks;
  for (const std::string& url : urls)
    tasks.push_back(fetch_data(url));

  std::vector<weft::outcome<page>> results =
      co_await weft::gather(weft::return_exceptions, std::move(tasks));

  std::size_t failures = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].has_value()) {
      std::printf("  task %zu: %s\n", i, results[i].value().url.c_str());
    } else {
      std::printf("  task %zu failed: %s\n", i, message_of(results[i].error()).c_str());
      ++failures;
    }
  }
  co_return failures;
}

weft::task<bool> async_main() {
  bool ok = true;

  stopwatch watch;
  auto [first, second, third] = co_await fetch_all_data();
  double took = watch.seconds();
  std::printf("gather(a, b, c): %s, %s, %s\n", first.url.c_str(), second.url.c_str(),
              third.url.c_str());
  std::printf("3 fetches of 1 s took %.2f s concurrently\n", took);
  ok &= check(first.url == "https://api1.example.com" && third.url == "https://api3.example.com",
              "gather(a, b, c) returns the results in argument order");
  ok &= check(took_about(took, 1.0), "3 concurrent fetches take about 1 s");

  const std::vector<std::string> urls = {"https://a.example.com", "https://b.example.com",
                                         "https://c.example.com", "https://d.example.com",
                                         "https://e.example.com"};
  watch = stopwatch();
  const std::vector<page> pages = co_await fetch_multiple_urls(urls);
  took = watch.seconds();
  std::printf("gather(vector): %zu pages, the last from %s\n", pages.size(),
              pages.empty() ? "-" : pages.back().url.c_str());
  std::printf("%zu fetches of 1 s took %.2f s concurrently\n", urls.size(), took);
  ok &= check(pages.size() == urls.size() && pages.back().url == urls.back(),
              "gather(vector) returns one result per task, in order");
  ok &= check(took_about(took, 1.0), "5 concurrent fetches take about 1 s");

  const std::vector<std::string> some_fail = {
      "https://a.example.com", "https://unreachable.example.com", "https://c.example.com",
      "https://unreachable.example.org"};
  // Without return_exceptions, gather waits for every fetch, then rethrows the first failure.
  watch = stopwatch();
  std::string error;
  try {
    (void)co_await fetch_multiple_urls(some_fail);
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  took = watch.seconds();
  std::printf("gather(vector) with 2 failing fetches threw after %.2f s: %s\n", took,
              error.c_str());
  ok &= check(error.find("unreachable") != std::string::npos, "gather rethrows a failure");

  watch = stopwatch();
  std::printf("gather(return_exceptions, vector):\n");
  const std::size_t failures = co_await fetch_with_error_handling(some_fail);
  took = watch.seconds();
  std::printf("%zu fetches of 1 s, %zu failed, took %.2f s concurrently\n", some_fail.size(),
              failures, took);
  ok &= check(failures == 2, "return_exceptions: 2 of the 4 fetches failed");
  ok &= check(took_about(took, 1.0), "4 concurrent fetches take about 1 s");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::gather

// The program `gather`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::gather::run(); }
#endif
