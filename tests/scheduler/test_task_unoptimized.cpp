// tests/test_task_unoptimized.cpp: weft::task compiled without optimization, as in a user's debug
// build. tests/CMakeLists.txt builds this file with -O0 in every preset, so that the release build
// (g++) checks what the debug preset would: g++ 12 makes symmetric transfer a tail call only at
// -O2, and without the trampoline (detail/await_trampoline.hpp) a million nested awaits overflow
// the worker's 8 MiB stack (SIGSEGV between 40,000 and 80,000 deep). Under the sanitizer presets
// (clang) the same tests check the plain symmetric transfer.
#include <doctest/doctest.h>

#include <chrono>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

#if defined(__OPTIMIZE__)
#error "test_task_unoptimized.cpp must be compiled with -O0 (see tests/CMakeLists.txt)"
#endif

namespace {

constexpr long depth = 1'000'000;

// Each level awaits the next: `depth` frames alive at once, then `depth` returns.
weft::task<long> nested(long n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await nested(n - 1);
}

// The same, but the innermost task suspends (yield_now) before it returns, so that the returns
// start from a task the worker loop resumed in the middle of the chain.
weft::task<long> nested_suspending(long n) {
  if (n == 0) {
    co_await weft::yield_now();
    co_return 0;
  }
  co_return 1 + co_await nested_suspending(n - 1);
}

}  // namespace

TEST_CASE("task: a chain of a million nested awaits runs without optimization") {
  weft_test::watchdog dog(std::chrono::minutes(5));
  weft::runtime rt({.worker_threads = 1});
  CHECK(rt.block_on(nested(depth)) == depth);
}

TEST_CASE(
    "task: a million nested awaits return without optimization after the innermost suspends") {
  weft_test::watchdog dog(std::chrono::minutes(5));
  weft::runtime rt({.worker_threads = 2});
  auto root = []() -> weft::task<long> {
    co_return co_await weft::spawn(nested_suspending(depth));
  };
  CHECK(rt.block_on(root()) == depth);
}
