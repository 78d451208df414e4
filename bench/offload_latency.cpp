// bench/offload_latency.cpp: does CPU-bound work starve the event loop? A ticker task asks to wake
// every 1 ms and records how late each wake-up is, while `jobs` CPU jobs (a tbb::parallel_reduce
// of `ms` milliseconds of one core's work each) run at once. operations = ticks.
//   weft:    the jobs run through co_await weft::compute (the runtime's oneTBB arena);
//   inline:  the same jobs called directly inside weft tasks (the DON'T: they hold the workers);
//   onetbb:  the same jobs on oneTBB alone (two plain threads calling parallel_reduce), no ticker.
// `ms` per run is the time until every job finished (the weft/onetbb ratio is the "at most 1.1x
// oneTBB alone" target). The ticker's p99 is the 5th-latest of ~500 ticks, so one preemption on a
// shared machine moves it: every run (warm-up included) is preceded by an idle phase of the same
// length, alternating idle and loaded, with one ticker running through all of them on the same
// runtime, and the p99s are taken per phase. Extra fields (microseconds): tick_p50_us over all
// loaded ticks; tick_p99_us and idle_p99_us, the medians over the timed runs of each phase's p99;
// p99_ratio, the median of the paired loaded/idle p99 ratios (the target: at most 1.1); ticks,
// the loaded ticks recorded.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_reduce.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// Work items per millisecond of one core (measured once on the reference VM, about 1 ns each);
// every system does exactly the same items, and the checksum proves it.
constexpr std::uint64_t items_per_ms = 1'000'000;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t job(std::uint64_t items, std::uint64_t seed) {
  return tbb::parallel_reduce(
      tbb::blocked_range<std::uint64_t>(0, items), std::uint64_t{0},
      [seed](const tbb::blocked_range<std::uint64_t>& r, std::uint64_t acc) {
        for (std::uint64_t i = r.begin(); i != r.end(); ++i)
          acc += mix(i + seed) & 0xff;
        return acc;
      },
      std::plus<>());
}

// The phase a tick belongs to: -1 (not recorded: warm-up, start-up), else 2 * run for the idle
// phase before run `run` and 2 * run + 1 for the loaded phase of that run.
struct tick {
  int phase;
  double lateness_us;
};

// Ticks every 1 ms until *stop, recording how late each wake-up came and in which phase. One
// ticker runs across every phase of the process, so the idle and the loaded phases see the same
// deadlines: the timer wheel rounds a deadline up to its next 1 ms tick, and a ticker started
// afresh for each phase would land on a new, random offset from those ticks (0-1 ms), which
// decided the idle/loaded ratio more than the load did (docs/architecture.md, "Offload and the
// event loop's latency").
weft::task<void> ticker(std::atomic<bool>* stop, const std::atomic<int>* phase,
                        std::vector<tick>* ticks) {
  auto next = clock_type::now();
  while (!stop->load(std::memory_order_relaxed)) {
    next += std::chrono::milliseconds(1);
    co_await weft::sleep_until(next);
    const auto late = clock_type::now() - next;
    ticks->push_back({phase->load(std::memory_order_relaxed),
                      std::chrono::duration<double, std::micro>(late).count()});
  }
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

weft::task<std::uint64_t> weft_run(bool offload, long jobs, std::uint64_t items) {
  std::vector<weft::join_handle<std::uint64_t>> running;
  for (long j = 0; j < jobs; ++j) {
    const auto seed = static_cast<std::uint64_t>(j);
    if (offload) {
      running.push_back(weft::spawn([items, seed]() -> weft::task<std::uint64_t> {
        co_return co_await weft::compute([items, seed] { return job(items, seed); });
      }));
    } else {
      running.push_back(weft::spawn([items, seed]() -> weft::task<std::uint64_t> {
        co_return job(items, seed);  // holds the worker for the whole job
      }));
    }
  }
  std::uint64_t sum = 0;
  for (auto& r : running)
    sum += co_await r;
  co_return sum;
}

weft::task<void> idle_for(std::chrono::milliseconds length) { co_await weft::sleep(length); }

weft::task<void> join(weft::join_handle<void> handle) { co_await handle; }

// The checksum every run must reproduce, from oneTBB called directly.
std::uint64_t expected(long jobs, std::uint64_t items) {
  std::uint64_t sum = 0;
  for (long j = 0; j < jobs; ++j)
    sum += job(items, static_cast<std::uint64_t>(j));
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long jobs = opts.param("jobs", 2);
  const auto items = static_cast<std::uint64_t>(opts.param("ms", 500)) * items_per_ms;
  const std::uint64_t want = expected(jobs, items);
  std::vector<double> lateness_us;  // every loaded tick of the timed runs
  std::vector<double> loaded_p99;   // per timed run
  std::vector<double> idle_p99;     // per idle phase before a timed run
  std::vector<double> ratios;       // loaded p99 / the idle p99 just before it
  if (opts.system == "weft" || opts.system == "inline") {
    const bool offload = opts.system == "weft";
    weft::runtime rt(bench::weft_options(opts));
    std::atomic<bool> stop{false};
    std::atomic<int> phase{-1};
    std::vector<tick> ticks;
    auto ticking = rt.spawn(ticker(&stop, &phase, &ticks));
    // The first idle phase lasts `ms`; later ones as long as the loaded run before them.
    auto idle_length = std::chrono::milliseconds(opts.param("ms", 500));
    for (int i = 0; i < opts.warmup + opts.runs; ++i) {
      const bool timed = i >= opts.warmup;
      phase.store(timed ? 2 * i : -1, std::memory_order_relaxed);
      rt.block_on(idle_for(idle_length));
      phase.store(timed ? 2 * i + 1 : -1, std::memory_order_relaxed);
      const auto start = clock_type::now();
      bench::check(rt.block_on(weft_run(offload, jobs, items)) == want, "offload_latency checksum");
      const auto end = clock_type::now();
      idle_length = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(end - start),
                               std::chrono::milliseconds(20), std::chrono::milliseconds(2000));
      if (timed) bench::emit_run(std::chrono::duration<double, std::milli>(end - start).count());
    }
    phase.store(-1, std::memory_order_relaxed);
    stop.store(true, std::memory_order_relaxed);
    rt.block_on(join(std::move(ticking)));
    for (int i = opts.warmup; i < opts.warmup + opts.runs; ++i) {
      std::vector<double> idle_lateness;
      std::vector<double> run_lateness;
      for (const tick& t : ticks) {
        if (t.phase == 2 * i) idle_lateness.push_back(t.lateness_us);
        if (t.phase == 2 * i + 1) run_lateness.push_back(t.lateness_us);
      }
      lateness_us.insert(lateness_us.end(), run_lateness.begin(), run_lateness.end());
      const double idle = percentile(idle_lateness, 0.99);
      const double loaded = percentile(run_lateness, 0.99);
      idle_p99.push_back(idle);
      loaded_p99.push_back(loaded);
      if (idle > 0) ratios.push_back(loaded / idle);
    }
  } else if (opts.system == "onetbb") {
    bench::run_timed(opts, [&] {
      std::vector<std::uint64_t> sums(static_cast<std::size_t>(jobs));
      std::vector<std::thread> threads;
      for (long j = 0; j < jobs; ++j) {
        threads.emplace_back([&, j] {
          sums[static_cast<std::size_t>(j)] = job(items, static_cast<std::uint64_t>(j));
        });
      }
      for (auto& t : threads)
        t.join();
      std::uint64_t sum = 0;
      for (auto s : sums)
        sum += s;
      bench::check(sum == want, "offload_latency checksum");
    });
  } else {
    bench::unknown_system(opts);
  }
  char extra[256];
  std::snprintf(extra, sizeof extra,
                "\"tick_p50_us\":%.1f,\"tick_p99_us\":%.1f,\"idle_p99_us\":%.1f,"
                "\"p99_ratio\":%.2f,\"ticks\":%zu",
                percentile(lateness_us, 0.5), percentile(loaded_p99, 0.5),
                percentile(idle_p99, 0.5), percentile(ratios, 0.5), lateness_us.size());
  bench::emit_end(extra);
}
