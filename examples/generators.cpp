// examples/generators.cpp: async generators, `async for`, async iterators (__anext__) and async
// comprehensions. Docs: docs/patterns/generators.md.
//
// The seed guide's "Async Generators", "Async Iterators" and "Async Comprehensions": the
// async_range generator, a stream with cleanup that closes its "session", the hand-written
// AsyncIterator, the three comprehensions over async_user_ids (list, dict, set), and merge of two
// streams. Latencies are simulated with weft::sleep, shorter than the seed's.
//
//   Python                                        weft
//   async def async_range(n): ... yield i         weft::generator<int> async_range(int n)
//   async for v in async_range(10): ...           while (auto v = co_await g.next()) ...
//                                                 co_await weft::for_each(g, fn)
//   __anext__ / StopAsyncIteration                next() -> task<std::optional<T>> / nullopt
//   [u async for i in ids() if await a(i)         co_await weft::collect(weft::map(
//      for u in [await f(i)]]                         weft::filter(ids(), a), f))
//   {i: u async for i in ids() ...}               collect<std::map<int, user>>(map(..., pair))
//   {i async for i in ids() if await a(i)}        collect<std::set<int>>(filter(ids(), a))

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::generators {

using namespace std::chrono_literals;

namespace {

// The seed's async_range: yields 0..count-1, each after some async work.
weft::generator<int> async_range(int count) {
  for (int i = 0; i < count; ++i) {
    co_await weft::sleep(20ms);  // simulate async work
    co_yield i;
  }
}

int sessions_open = 0;

// The seed's fetch_items_stream: opens a session, streams lines, closes the session. The close
// awaits, so a consumer that stops early calls close() (Python's aclose()) to run it.
weft::generator<std::string> fetch_items_stream(std::string url) {
  ++sessions_open;
  std::printf("    session opened for %s\n", url.c_str());
  std::exception_ptr stop;
  try {
    for (int line = 0; line < 100; ++line) {
      co_await weft::sleep(5ms);  // the next line of the response
      co_yield "{\"item\": " + std::to_string(line) + "}";
    }
  } catch (const weft::generator_exit&) {
    stop = std::current_exception();  // close(): clean up below, then finish
  }
  co_await weft::sleep(10ms);  // close the session (simulated I/O)
  --sessions_open;
  std::printf("    session closed\n");
  if (stop) std::rethrow_exception(stop);
}

// The seed's AsyncIterator class, hand-written: any type with value_type and next() is an async
// iterator, and every stream helper accepts it.
class async_iterator {
 public:
  using value_type = int;
  explicit async_iterator(int count) : count_(count) {}
  weft::task<std::optional<int>> next() {
    if (current_ >= count_) co_return std::nullopt;  // StopAsyncIteration
    co_await weft::sleep(20ms);
    co_return current_++;
  }

 private:
  int count_;
  int current_ = 0;
};

struct user {
  int id;
  std::string name;
};

weft::generator<int> async_user_ids() {
  for (int id = 1; id <= 6; ++id) {
    co_await weft::sleep(5ms);
    co_yield id;
  }
}
weft::task<bool> is_active(int id) {
  co_await weft::sleep(5ms);
  co_return id % 3 != 0;
}
weft::task<user> fetch_user(int id) {
  co_await weft::sleep(10ms);
  co_return user{id, "user" + std::to_string(id)};
}

weft::generator<std::string> ticker(std::string name, int count, std::chrono::milliseconds period) {
  for (int i = 0; i < count; ++i) {
    co_await weft::sleep(period);
    co_yield name + std::to_string(i);
  }
}

weft::task<bool> async_main() {
  bool ok = true;
  {
    stopwatch watch;
    std::printf("async for value in async_range(10):\n   ");
    std::vector<int> seen;
    auto range = async_range(10);
    while (std::optional<int> value = co_await range.next()) {
      std::printf(" %d", *value);
      seen.push_back(*value);
    }
    std::printf("\n    took %.2f s (10 x 20 ms, one at a time: the producer waits for us)\n",
                watch.seconds());
    ok &= check(seen == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "0..9 in order");
  }
  {
    std::printf("fetch_items_stream, stopping after 3 items and closing:\n");
    auto stream = fetch_items_stream("https://api.example.com/items");
    for (int i = 0; i < 3; ++i)
      std::printf("    %s\n", (co_await stream.next())->c_str());
    co_await stream.close();
    ok &= check(sessions_open == 0, "close() ran the stream's awaiting cleanup");
  }
  {
    std::printf("async for value in AsyncIterator(5):\n   ");
    co_await weft::for_each(async_iterator(5), [](int v) { std::printf(" %d", v); });
    std::printf("\n");
  }
  {
    stopwatch watch;
    auto users =
        co_await weft::collect(weft::map(weft::filter(async_user_ids(), is_active), fetch_user));
    std::printf("list comprehension: %zu active users:", users.size());
    for (const user& u : users)
      std::printf(" %s", u.name.c_str());
    std::printf(" (%.2f s)\n", watch.seconds());
    ok &= check(users.size() == 4 && users.front().id == 1 && users.back().id == 5,
                "active users 1 2 4 5 in order");

    auto user_map = co_await weft::collect<std::map<int, user>>(
        weft::map(async_user_ids(), [](int id) -> weft::task<std::pair<int, user>> {
          co_return std::pair<int, user>(id, co_await fetch_user(id));
        }));
    std::printf("dict comprehension: %zu users, user_map[2] = %s\n", user_map.size(),
                user_map.at(2).name.c_str());
    ok &= check(user_map.size() == 6, "a user for every id");

    auto active = co_await weft::collect<std::set<int>>(weft::filter(async_user_ids(), is_active));
    std::printf("set comprehension: %zu active ids\n", active.size());
    ok &= check(active == std::set<int>{1, 2, 4, 5}, "active ids 1 2 4 5");

    auto batches = co_await weft::collect(weft::chunk(weft::take(async_range(100), 7), 3));
    std::printf("take(7) in chunks of 3: %zu batches, the last of %zu\n", batches.size(),
                batches.back().size());
    ok &= check(batches.size() == 3 && batches.back().size() == 1, "7 items in 3 + 3 + 1");
  }
  {
    stopwatch watch;
    std::printf("merge(fast ticker 6 x 50 ms, slow ticker 3 x 100 ms):\n   ");
    auto merged = weft::merge(ticker("fast", 6, 50ms), ticker("slow", 3, 100ms));
    int count = 0;
    while (auto item = co_await merged.next()) {
      std::printf(" %s", item->c_str());
      ++count;
    }
    std::printf("\n    took %.2f s (the streams run concurrently: not 0.3 + 0.3 s)\n",
                watch.seconds());
    ok &= check(count == 9, "all 9 items merged");
    ok &= check(watch.seconds() < 0.5, "the merged streams ran concurrently");
  }
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::generators

// The program `generators`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::generators::run(); }
#endif
