// examples/http_client.cpp: the seed guide's aiohttp pattern, "fetch many URLs at once, bounded
// by a semaphore", on weft::http::client, against a small JSON server on loopback in the same
// program (a weft::http::server on loopback). Also part of weft_demo. Docs: docs/patterns/http.md.
//
//   Python (aiohttp)                                   weft
//   async with aiohttp.ClientSession() as session:     weft::http::client session;
//       async with session.get(url) as response:       auto r = co_await session.get(url);
//           return await response.json()               co_return weft::http::json(r);
//   semaphore = asyncio.Semaphore(5)                   weft::semaphore semaphore(5);
//   async def fetch_with_semaphore(url):               weft::task<json> fetch_with(...) {
//       async with semaphore:                            auto permit = co_await
//           return await fetch_url(url)                      semaphore.acquire();
//                                                        co_return co_await fetch_url(url); }
//   await asyncio.gather(*tasks)                       co_await weft::gather(std::move(tasks));
//
// The server answers GET /items/<n> with {"id": n, "square": n*n} after 50 ms (a slow backend) and
// counts how many requests it serves at once. 20 URLs, at most 5 at a time: about 4 rounds of
// 50 ms, never more than 5 in flight, and the client needs only 5 connections (keep-alive).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/net/http/client.hpp>
#include <weft/net/http/client_json.hpp>
#include <weft/net/http/router.hpp>
#include <weft/net/http/server.hpp>
#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::http_client {

namespace {

using namespace std::chrono_literals;

// Counters only (no other data is published through them): seq_cst increments are plenty.
std::atomic<int> in_flight{0};      // requests the server is answering now
std::atomic<int> max_in_flight{0};  // the most at once

// The backend: a weft::http::server whose handler takes 50 ms and counts the requests in flight.
weft::task<weft::http::response> item(weft::http::request& req) {
  const int now = ++in_flight;
  for (int seen = max_in_flight; now > seen && !max_in_flight.compare_exchange_weak(seen, now);) {
  }
  co_await weft::sleep(50ms);
  const int n = std::stoi(std::string(req.param("n")));
  --in_flight;
  co_return weft::http::response::text(
      200, "{\"id\":" + std::to_string(n) + ",\"square\":" + std::to_string(n * n) + "}",
      "application/json");
}

// aiohttp's fetch_url: GET and parse the JSON body.
weft::task<nlohmann::json> fetch_url(weft::http::client& session, std::string url) {
  const weft::http::client_response r = co_await session.get(std::move(url));
  co_return weft::http::json(r);
}

// The semaphore bounds how many fetches run at once.
weft::task<nlohmann::json> fetch_with_semaphore(weft::semaphore& semaphore,
                                                weft::http::client& session, std::string url) {
  auto permit = co_await semaphore.acquire();
  co_return co_await fetch_url(session, std::move(url));
}

weft::task<int> async_main() {
  weft::http::router routes;
  routes.get("/items/{n}", item);
  auto server = co_await weft::http::server::start(routes, "127.0.0.1", 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());

  std::vector<nlohmann::json> items;
  double seconds = 0;
  std::uint64_t connections = 0;
  {
    // The session's pooled keep-alive connections close with it.
    weft::http::client session;
    weft::semaphore semaphore(5);
    std::vector<weft::task<nlohmann::json>> tasks;
    for (int i = 1; i <= 20; ++i)
      tasks.push_back(
          fetch_with_semaphore(semaphore, session, base + "/items/" + std::to_string(i)));
    stopwatch clock;
    items = co_await weft::gather(std::move(tasks));
    seconds = clock.seconds();
    connections = session.connections_opened();
  }

  bool right = items.size() == 20;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const int id = static_cast<int>(i) + 1;
    right = right && items[i]["id"] == id && items[i]["square"] == id * id;
  }
  std::printf("  fetched %zu items in %.2f s, at most %d at once, over %llu connections\n",
              items.size(), seconds, max_in_flight.load(),
              static_cast<unsigned long long>(connections));

  co_await server.shutdown(1s);
  const bool ok = check(right, "every item comes back with its square") &&
                  check(max_in_flight.load() <= 5, "at most 5 requests in flight") &&
                  check(connections <= 5, "at most 5 connections opened") &&
                  check(seconds >= 0.19 && seconds < 2.0, "about 4 rounds of 50 ms");
  co_return ok ? 0 : 1;
}

}  // namespace

int run() { return weft::run(async_main()); }

}  // namespace examples::http_client

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::http_client::run(); }
#endif
