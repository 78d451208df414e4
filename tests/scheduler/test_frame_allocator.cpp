// tests/test_frame_allocator.cpp: the recycling frame allocator (scheduler/frame_allocator.cpp)
// keeps what a thread frees for that thread's next allocations, within a bound per thread. With
// -DWEFT_FRAME_ALLOCATOR=system (the asan and tsan presets) nothing is cached and the bounds hold
// trivially.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;
// The bound per thread that docs/architecture.md promises (frame_allocator.hpp's
// max_cached_frame_bytes must not exceed it).
constexpr std::size_t promised_bound = std::size_t{256} << 10;
static_assert(weft::detail::max_cached_frame_bytes <= promised_bound);

TEST_CASE(
    "frame allocator: a thread that frees frames allocated elsewhere caches at most the bound") {
  // 10,000 frames of 200 bytes (2 MB) allocated on one thread, freed on another that never
  // allocates: the freeing thread keeps at most the bound.
  constexpr std::size_t count = 10'000;
  constexpr std::size_t size = 200;
  std::vector<void*> frames(count);
  std::thread allocator([&] {
    for (auto& f : frames)
      f = weft::detail::allocate_frame(size);
  });
  allocator.join();
  std::size_t cached = 0;
  std::thread freer([&] {
    for (void* f : frames)
      weft::detail::deallocate_frame(f, size);
    cached = weft::detail::cached_frame_bytes();
  });
  freer.join();
  CHECK(cached <= promised_bound);
}

TEST_CASE(
    "frame allocator: workers running tasks spawned by foreign threads cache at most the bound") {
  // The pattern that grew RSS from 3.6 to 12.4 MB: every frame is allocated on a foreign thread
  // and freed on a worker, which never reuses it.
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  std::atomic<int> finished{0};
  constexpr int spawns = 20'000;
  auto work = [](std::atomic<int>& done) -> weft::task<> {
    co_await weft::yield_now();
    done.fetch_add(1, std::memory_order_relaxed);
  };
  std::thread foreign([&] {
    for (int i = 0; i < spawns; ++i)
      rt.spawn(work(finished)).detach();
  });
  foreign.join();
  while (finished.load(std::memory_order_relaxed) < spawns)
    std::this_thread::sleep_for(1ms);
  // Each worker reports its own cache: spawn enough probes that both workers run one.
  auto probe = []() -> weft::task<std::size_t> { co_return weft::detail::cached_frame_bytes(); };
  auto probes = [&]() -> weft::task<std::size_t> {
    std::vector<weft::join_handle<std::size_t>> hs;
    for (int i = 0; i < 64; ++i)
      hs.push_back(weft::spawn(probe()));
    std::size_t most = 0;
    for (auto& h : hs) {
      const std::size_t c = co_await h;
      if (c > most) most = c;
    }
    co_return most;
  };
  CHECK(rt.block_on(probes()) <= promised_bound);
}
