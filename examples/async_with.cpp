// examples/async_with.cpp: `async with`: class-based (__aenter__/__aexit__) and
// @asynccontextmanager context managers. Docs: docs/patterns/async-context-managers.md.
//
// The seed guide's "Async Context Managers": the class-based AsyncDatabaseConnection
// (__aenter__/__aexit__) and the generator-based async_database_connection (@asynccontextmanager),
// over a simulated database whose connect, fetch and close each take a little simulated I/O. Each
// form runs a query that succeeds, one that fails, and one that is cancelled (by a timeout) in the
// middle: the connection is closed exactly once every time, and the close's own I/O is not
// interrupted by the cancellation.
//
//   Python                                        weft
//   class C: async def __aenter__(self)           struct C { task<connection&> enter();
//            async def __aexit__(self, t, v, tb)             task<> exit(std::exception_ptr); }
//   @asynccontextmanager                          weft::resource<connection> f(url) {
//   async def f(url): conn = await connect(url)     connection conn = co_await connect(url);
//       try: yield conn                             std::exception_ptr error = co_yield conn;
//       finally: await conn.close()                 co_await conn.close(); }
//   async with C(url) as conn: return await ...   co_await weft::async_with(C(url),
//                                                     [](connection& conn) -> task<R> {...});

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::async_with {

using namespace std::chrono_literals;

namespace {

std::atomic<int> open_connections{0};
std::atomic<int> closes{0};

// A simulated database connection.
class connection {
 public:
  explicit connection(std::string url) : url_(std::move(url)) {}
  weft::task<std::vector<std::string>> fetch(std::string query) {
    co_await weft::sleep(query.find("slow") != std::string::npos ? 5s : 30ms);
    if (query.find("missing") != std::string::npos)
      throw std::runtime_error("relation \"missing\" does not exist");
    co_return std::vector<std::string>{"alice", "bob", "carol"};
  }
  weft::task<> close() {
    co_await weft::sleep(20ms);  // the goodbye round trip: not interrupted by a cancellation
    --open_connections;
    ++closes;
  }
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  std::string url_;
};

weft::task<connection> async_connect(std::string url) {
  co_await weft::sleep(20ms);
  ++open_connections;
  co_return connection(std::move(url));
}

// Class-based: enter() is __aenter__, exit(error) is __aexit__.
class async_database_connection {
 public:
  explicit async_database_connection(std::string url) : url_(std::move(url)) {}
  weft::task<connection&> enter() {
    conn_.emplace(co_await async_connect(url_));
    std::printf("    INFO Connected to %s\n", url_.c_str());
    co_return *conn_;
  }
  weft::task<> exit(std::exception_ptr) {
    if (conn_) {
      co_await conn_->close();
      std::printf("    INFO Closed connection to %s\n", url_.c_str());
    }
  }

 private:
  std::string url_;
  std::optional<connection> conn_;
};

// Generator-based: acquire, co_yield once, clean up after the co_yield.
weft::resource<connection> async_database_connection_gen(std::string url) {
  connection conn = co_await async_connect(url);
  std::printf("    INFO Connected to %s\n", url.c_str());
  std::exception_ptr error = co_yield conn;
  if (error) std::printf("    ERROR Database error: %s\n", message_of(error).c_str());
  co_await conn.close();
  std::printf("    INFO Closed connection to %s\n", url.c_str());
}

// The seed's fetch_users and fetch_data, with the query as a parameter. The call is made in its
// own statement, then awaited: g++ 12 destroys twice a lambda temporary that captures a string
// when it is written inside a co_await expression (clang is fine; reproduced without weft's
// stream code, with any coroutine taking such a lambda by value).
weft::task<std::vector<std::string>> fetch_users(std::string query) {
  auto work = weft::async_with(async_database_connection("postgresql://db.example.com/app"),
                               [query](connection& conn) { return conn.fetch(query); });
  co_return co_await std::move(work);
}
weft::task<std::vector<std::string>> fetch_data(std::string query) {
  auto work = weft::async_with(async_database_connection_gen("postgresql://db.example.com/app"),
                               [query](connection& conn) { return conn.fetch(query); });
  co_return co_await std::move(work);
}

using fetcher = weft::task<std::vector<std::string>> (*)(std::string);

weft::task<bool> three_endings(const char* form, fetcher fetch) {
  bool ok = true;
  const int closes_before = closes;
  std::printf("  %s, a query that succeeds:\n", form);
  auto rows = co_await fetch("SELECT * FROM users");
  std::printf("    fetched %zu rows\n", rows.size());
  ok &= check(rows.size() == 3, "3 rows");

  std::printf("  %s, a query that fails:\n", form);
  try {
    (void)co_await fetch("SELECT * FROM missing");
    ok &= check(false, "the failing query throws");
  } catch (const std::runtime_error& e) {
    std::printf("    caught: %s\n", e.what());
  }

  std::printf("  %s, a slow query cancelled by a 100 ms timeout:\n", form);
  stopwatch watch;
  try {
    (void)co_await weft::timeout(100ms, fetch("SELECT slow FROM users"));
    ok &= check(false, "the slow query times out");
  } catch (const weft::timeout_error&) {
    std::printf("    timed out after %.2f s, connection closed first\n", watch.seconds());
  }
  ok &= check(closes - closes_before == 3, "closed exactly once per query");
  ok &= check(open_connections == 0, "no connection left open");
  co_return ok;
}

weft::task<bool> async_main() {
  stopwatch watch;
  bool ok = co_await three_endings("class-based", &fetch_users);
  ok &= co_await three_endings("generator-based", &fetch_data);
  std::printf("6 queries with connect and close in %.2f s\n", watch.seconds());
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::async_with

// The program `async_with`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::async_with::run(); }
#endif
