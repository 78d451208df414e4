// tests/scheduler/test_compute.cpp: weft::compute on the runtime's oneTBB arena: TBB algorithms
// inside it give their results, exceptions from parallel bodies reach the awaiter, cancellation
// stops a parallel_for at its next chunk (and the awaiter resumes only after fn returned), the
// awaiting worker stays free, many calls run at once while weft tasks keep going, and shutdown
// waits for a running fn before destroying its frame.
#include <doctest/doctest.h>

#include <unistd.h>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/captured_log.hpp"
#include "support/eventually.hpp"
#include "support/stress.hpp"
#include "support/time_slice.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using weft_test::captured_log;
using weft_test::eventually;

// The arena's size for a test that wants `n` threads. Under TSan it gets one: libtbb is not
// instrumented, so TSan cannot see the edges by which TBB hands chunks from one of its threads to
// another, and would report the data of every parallel body as raced. With one arena thread every
// TBB hand-off stays on one side, while the seam this file tests (the enqueue from a weft worker,
// the cancel from another thread, the wake back into weft) still crosses threads and is checked.
constexpr std::size_t arena_threads(std::size_t n) {
#if defined(__SANITIZE_THREAD__)
  return n > 0 ? 1 : 0;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return n > 0 ? 1 : 0;
#else
  return n;
#endif
#else
  return n;
#endif
}

std::int64_t parallel_sum(std::int64_t n) {
  return tbb::parallel_reduce(
      tbb::blocked_range<std::int64_t>(0, n), std::int64_t{0},
      [](const tbb::blocked_range<std::int64_t>& r, std::int64_t sum) {
        for (std::int64_t i = r.begin(); i != r.end(); ++i)
          sum += i;
        return sum;
      },
      std::plus<>());
}

}  // namespace

TEST_CASE("compute: parallel_reduce inside compute gives the right sum") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    constexpr std::int64_t n = 10'000'000;
    const std::int64_t sum = co_await weft::compute([] { return parallel_sum(n); });
    CHECK(sum == n * (n - 1) / 2);
    // void and reference results, and a lambda that uses the frame's locals by reference.
    std::vector<int> data(1000, 1);
    co_await weft::compute([&data] {
      tbb::parallel_for(std::size_t{0}, data.size(), [&](std::size_t i) { data[i] *= 2; });
    });
    CHECK(std::accumulate(data.begin(), data.end(), 0) == 2000);
    int& first = co_await weft::compute([&data]() -> int& { return data[0]; });
    CHECK(&first == data.data());
  };
  weft::run(main_task(), {.worker_threads = 2, .compute_threads = arena_threads(2)});
}

TEST_CASE("compute: fn runs inside an arena of compute_threads threads") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<int> {
    co_return co_await weft::compute([] { return tbb::this_task_arena::max_concurrency(); });
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1, .compute_threads = 3}) == 3);
  // The default is the CPUs the process may use: at least one.
  CHECK(weft::run(main_task(), {.worker_threads = 1}) >= 1);
}

TEST_CASE("compute: the runtime's threads get a short time slice and arena threads do not") {
  // The event loop must win a core at once from CPU-bound jobs (bench offload_latency): a weft
  // thread that wakes preempts a running TBB thread when its slice is shorter.
  weft_test::watchdog dog(30s);
  if (!weft_test::kernel_has_custom_slices()) {
    MESSAGE("skipped: the kernel has no custom time slices (Linux < 6.12)");
    return;
  }
  auto main_task = []() -> weft::task<void> {
    const long long arena_slice =
        co_await weft::compute([] { return weft_test::slice_of_this_thread(); });
    // This weft worker, after the arena started:
    CHECK(weft_test::slice_of_this_thread() == 100'000);
    CHECK(arena_slice != 100'000);
    CHECK(arena_slice > 0);  // the kernel's default slice
  };
  weft::run(main_task(), {.worker_threads = 2, .compute_threads = arena_threads(2)});
}

TEST_CASE("compute: an exception in one chunk of a parallel_for reaches the awaiter") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<void> {
    CHECK_THROWS_WITH_AS(co_await weft::compute([] {
                           tbb::parallel_for(0, 100000, [](int i) {
                             if (i == 4242) throw std::runtime_error("bad chunk");
                           });
                         }),
                         "bad chunk", std::runtime_error);
    // The arena serves the next call.
    CHECK(co_await weft::compute([] { return parallel_sum(1000); }) == 999 * 1000 / 2);
  };
  weft::run(main_task(), {.worker_threads = 2, .compute_threads = arena_threads(2)});
}

TEST_CASE("compute: cancellation stops a long parallel_for early and resumes after fn returned") {
  weft_test::watchdog dog(60s);
  constexpr int iterations = 200000;  // 100 us each: about 10 s on two threads if not stopped
  std::atomic<int> done{0};
  std::atomic<bool> started{false};
  std::atomic<bool> returned{false};
  weft::runtime rt({.worker_threads = 2, .compute_threads = arena_threads(2)});
  auto handle = rt.spawn([&]() -> weft::task<bool> {
    try {
      co_await weft::compute([&] {
        started = true;
        tbb::parallel_for(0, iterations, [&](int) {
          std::this_thread::sleep_for(100us);
          ++done;
        });
        returned = true;
      });
    } catch (const weft::cancelled_error&) {
      co_return returned.load();  // cancelled_error comes only once fn has returned
    }
    co_return false;
  });
  CHECK(eventually([&] { return started.load() && done.load() > 10; }));
  const auto cancelled_at = std::chrono::steady_clock::now();
  handle.cancel();
  CHECK(rt.block_on([](weft::join_handle<bool> h) -> weft::task<bool> {
    co_return co_await std::move(h);
  }(std::move(handle))));
  CHECK(std::chrono::steady_clock::now() - cancelled_at < 3s);
  CHECK(done.load() < iterations / 4);
}

TEST_CASE("compute: the awaiting worker stays free while fn runs") {
  weft_test::watchdog dog(30s);
  // One weft worker. fn waits for a flag that only another weft task sets: if the worker were
  // blocked inside TBB, neither could finish.
  // The setter waits until fn has started (a fixed 10 ms sleep failed under TSan on a loaded
  // machine: the TBB thread started fn after the flag was set, and fn returned 0).
  auto main_task = []() -> weft::task<int> {
    auto flag = std::make_shared<std::atomic<bool>>(false);
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto setter = weft::spawn([flag, started]() -> weft::task<void> {
      while (!started->load())
        co_await weft::sleep(1ms);
      flag->store(true);
    });
    auto wait_for_flag = [flag, started] {  // named: g++ 12 and lambda temporaries in co_await
      int n = 0;
      while (!flag->load()) {
        started->store(true);  // only once fn has seen the flag unset, so n ends above zero
        std::this_thread::sleep_for(100us);
        ++n;
      }
      return n;
    };
    const int spins = co_await weft::compute(std::move(wait_for_flag));
    co_await setter;
    co_return spins;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1, .compute_threads = arena_threads(2)}) > 0);
}

TEST_CASE("compute: ten calls in flight at once while many weft tasks keep progressing") {
  weft_test::watchdog dog(120s);
  auto main_task = []() -> weft::task<void> {
    constexpr int tickers = 100;
    constexpr int ticks_needed = 500;
    auto ticks = std::make_shared<std::atomic<int>>(0);
    auto stop = std::make_shared<std::atomic<bool>>(false);
    std::vector<weft::join_handle<void>> ticking;
    for (int i = 0; i < tickers; ++i) {
      ticking.push_back(weft::spawn([ticks, stop]() -> weft::task<void> {
        while (!stop->load()) {
          co_await weft::sleep(1ms);
          ++*ticks;
        }
      }));
    }
    // Each call waits (on its TBB thread) until the weft tickers have ticked `ticks_needed`
    // times, then sums: the calls can only end if weft tasks progress while they are in flight.
    // No timing is assumed.
    constexpr std::int64_t n = 2'000'000;
    auto in_flight = std::make_shared<std::atomic<int>>(0);
    std::vector<weft::join_handle<std::int64_t>> jobs;
    for (int j = 0; j < 10; ++j) {
      jobs.push_back(weft::spawn([ticks, in_flight]() -> weft::task<std::int64_t> {
        ++*in_flight;
        auto wait_then_sum = [ticks] {  // named: g++ 12 and lambda temporaries in co_await
          while (ticks->load() < ticks_needed)
            std::this_thread::sleep_for(100us);
          return parallel_sum(n);
        };
        co_return co_await weft::compute(std::move(wait_then_sum));
      }));
    }
    for (auto& job : jobs)
      CHECK(co_await job == n * (n - 1) / 2);
    CHECK(in_flight->load() == 10);
    CHECK(ticks->load() >= ticks_needed);
    stop->store(true);
    for (auto& t : ticking)
      co_await t;
  };
  weft::run(main_task(), {.worker_threads = 2, .compute_threads = arena_threads(2)});
}

TEST_CASE("compute: shutdown cancels a running call and waits for fn before destroying its frame") {
  weft_test::watchdog dog(60s);
  auto log = std::make_shared<captured_log>();
  std::atomic<bool> started{false};
  std::atomic<bool> returned{false};
  {
    weft::runtime rt({.worker_threads = 2,
                      .blocking_shutdown_timeout = 50ms,
                      .compute_threads = arena_threads(2),
                      .log = log->hook()});
    rt.spawn([&]() -> weft::task<void> {
        std::vector<int> local(1000, 0);  // in the frame; fn writes to it until it returns
        co_await weft::compute([&] {
          started = true;
          tbb::parallel_for(0, 1000000, [&](int i) {
            std::this_thread::sleep_for(50us);
            local[static_cast<std::size_t>(i) % local.size()] = i;
          });
          // A tail that ignores the cancellation for a while: shutdown reports it and waits.
          std::this_thread::sleep_for(200ms);
          local[0] = 1;
          returned = true;
        });
      }).detach();
    CHECK(eventually([&] { return started.load(); }));
    rt.shutdown(10ms);
    CHECK(returned.load());  // waited for fn, reported after 50 ms
  }
  CHECK(log->count("compute() call(s) still running") == 1);
}

TEST_SUITE("stress") {
  TEST_CASE("compute: cancellations racing with starts and ends wake every awaiter exactly once") {
    weft_test::watchdog dog(120s);
    const std::size_t rounds = weft_test::stress_count(100, 2000);
    std::atomic<int> results{0};
    std::atomic<int> cancelled{0};
    weft::runtime rt({.worker_threads = 2, .compute_threads = arena_threads(2)});
    auto main_task = [&]() -> weft::task<void> {
      std::mt19937 rng(777);
      std::vector<weft::join_handle<std::int64_t>> handles;
      for (std::size_t i = 0; i < rounds; ++i) {
        const std::int64_t n = static_cast<std::int64_t>(rng() % 20000);
        handles.push_back(weft::spawn([n]() -> weft::task<std::int64_t> {
          co_return co_await weft::compute([n] { return parallel_sum(n); });
        }));
        if (rng() % 3 == 0) co_await weft::yield_now();
        if (rng() % 2 == 0) handles[rng() % handles.size()].cancel();
      }
      for (auto& h : handles) {
        try {
          (void)co_await std::move(h);
          ++results;
        } catch (const weft::cancelled_error&) {
          ++cancelled;
        }
      }
    };
    rt.block_on(main_task());
    CHECK(static_cast<std::size_t>(results.load() + cancelled.load()) == rounds);
    CHECK(rt.stats().compute_running == 0);
  }
}
