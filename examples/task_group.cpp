// examples/task_group.cpp: asyncio.TaskGroup and `except*`: structured concurrency, failures
// handled by type. Docs: docs/patterns/task-groups.md.
//
// The seed guide's "Task Groups (Python 3.11+)": three fetches in a group whose results are read
// after the group has joined, then a group of fetches where some fail with HTTP errors and one with
// a timeout, handled by type as `except*` does. Simulated I/O with weft::sleep.
//
//   Python                                   weft
//   async with asyncio.TaskGroup() as tg:    co_await weft::with_task_group(
//       tg.create_task(coro)                     [&](weft::task_group& tg) -> weft::task<> {
//                                                  tg.spawn(coro); co_return; });
//   task.result()                            group_handle.result(), after the group joined
//   except* HTTPError as eg:                 catch (const weft::exception_group& eg) {
//       for exc in eg.exceptions: ...          eg.handle<http_error>([](const http_error& e) {...})
//   except* TimeoutError as eg: ...              .handle<weft::timeout_error>(...)
//                                                .rethrow_if_any(); }
//   tg.create_task(handle(req))  # ignored       tg.start_soon(handle(req)) (freed when it ends)

#include <atomic>
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

namespace examples::task_group {

using namespace std::chrono_literals;

namespace {

struct page {
  std::string url;
  std::string data;
};

// aiohttp's ClientResponseError, for this example.
class http_error : public std::runtime_error {
 public:
  http_error(const std::string& url, int status)
      : std::runtime_error(url + ": HTTP " + std::to_string(status)) {}
};

// The simulated server: "/404" and "/500" answer with that status after 200 and 400 ms, "/slow"
// takes 5 s, anything else 500 ms.
weft::task<page> http_get(std::string url) {
  if (url.ends_with("/404")) {
    co_await weft::sleep(200ms);
    throw http_error(url, 404);
  }
  if (url.ends_with("/500")) {
    co_await weft::sleep(400ms);
    throw http_error(url, 500);
  }
  co_await weft::sleep(url.ends_with("/slow") ? 5000ms : 500ms);
  co_return page{std::move(url), "..."};
}

// A fetch gives up after 1 s with weft::timeout_error (as a client's request timeout would).
weft::task<page> fetch_data(std::string url) {
  co_return co_await weft::timeout(1s, http_get(std::move(url)));
}

// The seed's fetch_all_data: the results are read after the group, as task.result() is. A
// group_handle lives as long as its group, so this spells the group out and joins it; a group
// destroyed with children still running terminates the program (see docs/patterns/task-groups.md).
weft::task<std::vector<page>> fetch_all_data() {
  weft::task_group tg;
  weft::group_handle<page> task1 = tg.spawn(fetch_data("https://example.com/url1"));
  weft::group_handle<page> task2 = tg.spawn(fetch_data("https://example.com/url2"));
  weft::group_handle<page> task3 = tg.spawn(fetch_data("https://example.com/url3"));
  co_await tg.join();  // all tasks complete here (or an exception_group is thrown)
  co_return std::vector<page>{task1.result(), task2.result(), task3.result()};
}

// The same with with_task_group, the `async with` spelling that cannot forget to join: the
// children store their pages in `pages`, which outlives the group.
weft::task<std::vector<page>> fetch_all_data_scoped(std::vector<std::string> urls) {
  std::vector<page> pages(urls.size());
  co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
    for (std::size_t i = 0; i < urls.size(); ++i) {
      tg.spawn(
          [&pages, i](std::string url) -> weft::task<> {
            pages[i] = co_await fetch_data(std::move(url));
          },
          urls[i]);
    }
    co_return;
  });
  co_return pages;
}

struct handled {
  std::size_t http_errors = 0;
  std::size_t timeouts = 0;
};

// The seed's fetch_with_error_handling: except* HTTPError and except* TimeoutError.
weft::task<handled> fetch_with_error_handling(std::vector<std::string> urls,
                                              weft::task_group::policy policy) {
  handled counts;
  try {
    co_await weft::with_task_group(
        [&urls](weft::task_group& tg) -> weft::task<> {
          for (const std::string& url : urls)
            tg.spawn(fetch_data(url));
          co_return;
        },
        policy);
  } catch (const weft::exception_group& eg) {
    // Each handle<E> takes the exceptions of type E and returns a group of the others; what no
    // handler took is rethrown, as with except*.
    eg.handle<http_error>([&](const http_error& e) {
        std::printf("  ERROR HTTP error: %s\n", e.what());
        ++counts.http_errors;
      })
        .handle<weft::timeout_error>([&](const weft::timeout_error& e) {
          std::printf("  ERROR Timeout: %s\n", e.what());
          ++counts.timeouts;
        })
        .rethrow_if_any();
  }
  co_return counts;
}

// A long-lived group, a server's shape: one child per request, whose result nobody reads.
// start_soon (trio's nursery.start_soon; asyncio's tg.create_task with the task ignored) frees each
// child soon after it ends, so the group holds the requests in flight, not every request it ever
// served (tg.spawn would keep each child's frame for its group_handle until the group ends).
weft::task<std::size_t> serve_requests(std::size_t requests) {
  weft::channel<std::string> inbox(64);
  std::atomic<std::size_t> served{0};
  co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
    tg.start_soon([&inbox, requests]() -> weft::task<> {  // the clients
      for (std::size_t i = 0; i < requests; ++i)
        co_await inbox.send("https://example.com/r" + std::to_string(i));
      inbox.close();
    });
    while (auto request = co_await inbox.receive()) {
      tg.start_soon(
          [&served](std::string url) -> weft::task<> {
            co_await weft::sleep(1ms);  // handle the request
            if (url.starts_with("https://")) served.fetch_add(1);
          },
          std::move(*request));
    }
  });
  co_return served.load();
}

weft::task<bool> async_main() {
  bool ok = true;

  stopwatch watch;
  const std::vector<page> pages = co_await fetch_all_data();
  double took = watch.seconds();
  std::printf("task_group + join: %s, %s, %s after %.2f s\n", pages[0].url.c_str(),
              pages[1].url.c_str(), pages[2].url.c_str(), took);
  ok &= check(pages.size() == 3 && pages[2].url == "https://example.com/url3",
              "the three results, read after the join");
  ok &= check(took_about(took, 0.5), "the three fetches ran concurrently (0.5 s)");

  const std::vector<std::string> three = {"https://example.com/url1", "https://example.com/url2",
                                          "https://example.com/url3"};
  watch = stopwatch();
  const std::vector<page> scoped = co_await fetch_all_data_scoped(three);
  took = watch.seconds();
  std::printf("with_task_group: %zu pages after %.2f s\n", scoped.size(), took);
  ok &= check(scoped.size() == 3 && scoped[1].url == "https://example.com/url2",
              "with_task_group: the three results");
  ok &= check(took_about(took, 0.5), "with_task_group: concurrently (0.5 s)");

  const std::vector<std::string> urls = {
      "https://example.com/a",   "https://example.com/404", "https://example.com/slow",
      "https://example.com/500", "https://example.com/b",
  };

  // asyncio's TaskGroup semantics: the first failure (the 404, at 0.2 s) cancels the others, so
  // only that error reaches the handlers. Cancellations the group caused are not failures.
  std::printf("with_task_group (cancel_on_failure, as asyncio):\n");
  watch = stopwatch();
  handled counts =
      co_await fetch_with_error_handling(urls, weft::task_group::policy::cancel_on_failure);
  took = watch.seconds();
  std::printf("  %zu HTTP errors, %zu timeouts after %.2f s\n", counts.http_errors, counts.timeouts,
              took);
  ok &= check(counts.http_errors == 1 && counts.timeouts == 0,
              "cancel_on_failure: the first failure cancelled the rest");
  ok &= check(took_about(took, 0.2), "cancel_on_failure: the group ends at the first failure");

  // collect_all lets every child finish: both HTTP errors and the timeout are collected.
  std::printf("with_task_group (collect_all):\n");
  watch = stopwatch();
  counts = co_await fetch_with_error_handling(urls, weft::task_group::policy::collect_all);
  took = watch.seconds();
  std::printf("  %zu HTTP errors, %zu timeouts after %.2f s\n", counts.http_errors, counts.timeouts,
              took);
  ok &= check(counts.http_errors == 2 && counts.timeouts == 1,
              "collect_all: every failure, handled by type");
  ok &= check(took_about(took, 1.0), "collect_all: the group ends with the 1 s timeout");

  // A server loop in one group: 5,000 requests, each handled by a start_soon child.
  const std::size_t served = co_await serve_requests(5000);
  std::printf("start_soon: %zu requests served by one long-lived group\n", served);
  ok &= check(served == 5000, "start_soon: every request was handled before the group ended");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::task_group

// The program `task_group`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::task_group::run(); }
#endif
