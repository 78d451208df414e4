// tests/test_task.cpp: weft::task<T> (patterns.md row 1): values, void, references and exceptions
// come out of co_await; a task is lazy; a million nested awaits do not grow the stack.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<int> forty_two() { co_return 42; }

weft::task<std::string> greeting(std::string name) { co_return "hello " + name; }

weft::task<std::unique_ptr<int>> boxed(int value) { co_return std::make_unique<int>(value); }

weft::task<> set_flag(bool& flag) {
  flag = true;
  co_return;
}

weft::task<int&> pick(int& target) { co_return target; }

weft::task<int> fails() {
  throw std::runtime_error("boom");
  co_return 0;
}

weft::task<> fails_void() {
  throw std::invalid_argument("bad");
  co_return;
}

weft::task<int> add_through(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await add_through(depth - 1);
}

weft::task<int> rethrow_through(int depth) {
  if (depth == 0) throw std::runtime_error("deep");
  co_return co_await rethrow_through(depth - 1);
}

}  // namespace

TEST_CASE("task: a value comes out of co_await") {
  weft_test::watchdog dog(10s);
  auto outer = []() -> weft::task<int> {
    const int a = co_await forty_two();
    const std::string s = co_await greeting("weft");
    auto p = co_await boxed(7);
    CHECK(s == "hello weft");
    co_return a + *p;
  };
  CHECK(weft::run(outer(), {.worker_threads = 2}) == 49);
}

TEST_CASE("task: a void task runs its body when awaited") {
  weft_test::watchdog dog(10s);
  bool flag = false;
  auto outer = [](bool& f) -> weft::task<> { co_await set_flag(f); };
  weft::run(outer(flag), {.worker_threads = 1});
  CHECK(flag);
}

TEST_CASE("task: a reference task gives the same object back") {
  weft_test::watchdog dog(10s);
  int target = 5;
  auto outer = [](int& t) -> weft::task<int*> {
    int& r = co_await pick(t);
    r = 9;
    co_return &r;
  };
  CHECK(weft::run(outer(target), {.worker_threads = 1}) == &target);
  CHECK(target == 9);
}

TEST_CASE("task: an exception propagates through co_await") {
  weft_test::watchdog dog(10s);
  auto outer = []() -> weft::task<std::string> {
    try {
      (void)co_await fails();
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "boom");
    }
    try {
      co_await fails_void();
    } catch (const std::invalid_argument& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  };
  CHECK(weft::run(outer(), {.worker_threads = 1}) == "caught bad");
}

TEST_CASE("task: an uncaught exception leaves weft::run") {
  weft_test::watchdog dog(10s);
  CHECK_THROWS_WITH_AS(weft::run(fails(), {.worker_threads = 1}), "boom", std::runtime_error);
}

TEST_CASE("task: a task is lazy and runs nothing until awaited") {
  weft_test::watchdog dog(10s);
  int runs = 0;
  auto make = [](int& counter) -> weft::task<int> {
    ++counter;
    co_return counter;
  };
  {
    auto never = make(runs);  // created then destroyed without being awaited
    CHECK(never.valid());
  }
  CHECK(runs == 0);
  auto pending = make(runs);
  CHECK(runs == 0);
  auto outer = [](weft::task<int> t) -> weft::task<int> { co_return co_await std::move(t); };
  CHECK(weft::run(outer(std::move(pending)), {.worker_threads = 1}) == 1);
  CHECK(runs == 1);
}

TEST_CASE("task: a moved-from task is empty and the moved-to one runs") {
  weft_test::watchdog dog(10s);
  weft::task<int> a = forty_two();
  weft::task<int> b = std::move(a);
  CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the point of the test
  CHECK(b.valid());
  CHECK(weft::run(std::move(b), {.worker_threads = 1}) == 42);
}

TEST_CASE("task: a one million deep chain of nested awaits does not overflow the stack") {
  // Symmetric transfer must be a tail call (g++ -O2, clang at any level): each level starts the
  // next and each finished level resumes its parent without a new stack frame.
  weft_test::watchdog dog(120s);
  constexpr int depth = 1'000'000;
  CHECK(weft::run(add_through(depth), {.worker_threads = 1}) == depth);
}

TEST_CASE("task: an exception thrown one million awaits deep reaches the top") {
  weft_test::watchdog dog(120s);
  CHECK_THROWS_WITH_AS(weft::run(rethrow_through(1'000'000), {.worker_threads = 1}), "deep",
                       std::runtime_error);
}

namespace {
struct alignas(16) wide {
  long double value;
};
weft::task<wide> widened() { co_return wide{1.5L}; }

// True if the header inside `work`'s promise finds the frame that holds it (task_header::frame()
// derives it from its own address rather than storing it).
template <class T>
bool header_finds_its_frame(weft::task<T> work) {
  auto frame = work.release();
  const bool found = frame.promise().frame().address() == frame.address();
  frame.destroy();
  return found;
}
}  // namespace

TEST_CASE("task: the header finds its own frame for every alignment a task may have") {
  CHECK(header_finds_its_frame(forty_two()));
  CHECK(header_finds_its_frame(fails_void()));
  CHECK(header_finds_its_frame(greeting("frame")));
  CHECK(header_finds_its_frame(widened()));
  static_assert(alignof(weft::detail::task_promise<wide>) == 16);
}

TEST_CASE("task: a spawned task named and failed reports both after its frame shrank") {
  // The exception shares a word with the unarmed timeout, and the links of an awaited task share
  // the registry's (task_header.hpp): a spawned task that fails after awaiting a failing task
  // keeps its own name, its exception and its registry listing apart.
  weft::runtime rt({.worker_threads = 1});
  auto main_task = [](weft::runtime& runtime) -> weft::task<> {
    auto failing = []() -> weft::task<int> {
      co_await weft::yield_now();
      co_return co_await fails();
    };
    auto handle = weft::spawn_named("shrunk", failing());
    // A task is listed by the worker that starts it: let the only worker start it (it yields
    // back before it awaits the failing task).
    co_await weft::yield_now();
    bool listed = false;
    for (const auto& info : runtime.tasks())
      listed |= info.name == "shrunk";
    CHECK(listed);
    CHECK_THROWS_WITH_AS(co_await handle, "boom", std::runtime_error);
  };
  rt.block_on(main_task(rt));
}

// Bytes per suspended task (issue 2's target: at most 256, bench/run task_memory) are the sum of
// these structures, the coroutine's own state and the frame allocator's rounding; a task waiting
// on an event or sleeping has a 216-byte frame, which fills a 224-byte malloc chunk exactly. These
// budgets fail the test suite's build, not a benchmark nobody reads, when a field is added: grow
// one only together with a task_memory measurement (docs/architecture.md, "Measurements").
static_assert(sizeof(weft::detail::task_header) <= 88, "task_header over its byte budget");
static_assert(sizeof(weft::detail::task_promise<void>) <= 88, "task promise over its budget");
static_assert(sizeof(weft::detail::cancellable_wait) <= 24, "cancellable_wait over its budget");
static_assert(sizeof(weft::detail::timer_entry) <= 48, "timer_entry over its byte budget");
static_assert(sizeof(weft::sleep_awaiter) <= 72, "sleep's awaiter over its byte budget");
static_assert(sizeof(decltype(std::declval<weft::event&>().wait())) <= 80,
              "event's awaiter over its byte budget");
