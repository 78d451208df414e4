// bench/task_memory.cpp: bytes of memory per suspended task.
//
// n tasks are started and each suspends on a wait; once all are suspended, the growth of the
// resident set since just before the first spawn, divided by n, is the cost of one suspended task
// (frame, timer entry, queue and registry share). The timed part (`ms`) is from the first spawn
// until all are suspended. One run per process: a second run would reuse freed memory.
//
// weft's tasks each wait on one weft::event, which a foreign thread then sets, waking all of them
// ("wait":"event", as benchmarks.md specifies). The Asio peer's coroutines all wait on one
// steady_timer (on a strand, since a timer is not thread-safe), which is then cancelled, waking
// all of them ("wait":"timer_cancel"). `wake_or_teardown_ms` is the time until all have finished.
// (A weft task sleeping on a timer instead costs 16 bytes more: the timer entry; see
// docs/architecture.md, "Measurements".)
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

using std::chrono::steady_clock;

double ms_since(steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(steady_clock::now() - start).count();
}

std::atomic<long> suspended{0};

weft::task<> weft_waiter(weft::event& gate) {
  suspended.fetch_add(1, std::memory_order_relaxed);
  co_await gate.wait();
}

weft::task<> weft_root(long n, weft::event& gate) {
  for (long i = 0; i < n; ++i)
    weft::spawn(weft_waiter(gate)).detach();
  co_return;
}

bench::countdown woken;

using strand_type = asio::strand<asio::io_context::executor_type>;
using gate_type =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, strand_type>;

asio::awaitable<void> asio_waiter(gate_type& gate) {
  asio::error_code error;
  suspended.fetch_add(1, std::memory_order_relaxed);
  co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, error));
  woken.arrive();
}

asio::awaitable<void> asio_root(long n, gate_type& gate, strand_type strand) {
  for (long i = 0; i < n; ++i)
    asio::co_spawn(strand, asio_waiter(gate), asio::detached);
  co_return;
}

std::string extra(const char* wait, long before, long after, long n, double teardown_ms) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "\"wait\":\"%s\",\"bytes_per_task\":%.1f,\"rss_growth_kb\":%ld,"
                "\"wake_or_teardown_ms\":%.1f",
                wait, static_cast<double>(after - before) / static_cast<double>(n),
                (after - before) / 1024, teardown_ms);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  if (opts.system == "weft") {
    auto rt = std::make_unique<weft::runtime>(bench::weft_options(opts));
    weft::event gate;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the threads settle
    const long before = bench::current_rss_bytes();
    const auto start = steady_clock::now();
    rt->spawn(weft_root(n, gate)).detach();
    // Every frame exists once its task has counted itself (the wait that follows allocates
    // nothing); the root has finished once only the n waiters are left.
    while (suspended.load(std::memory_order_relaxed) != n ||
           rt->stats().live_tasks != static_cast<std::uint64_t>(n)) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    bench::emit_run(ms_since(start));
    const long after = bench::current_rss_bytes();
    const auto wake = steady_clock::now();
    gate.set();  // any thread may set an event
    while (rt->stats().live_tasks != 0)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    const double wake_ms = ms_since(wake);
    rt.reset();
    bench::emit_end(extra("event", before, after, n, wake_ms));
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    strand_type strand = asio::make_strand(io);
    gate_type gate(strand, std::chrono::hours(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const long before = bench::current_rss_bytes();
    woken.reset(n);
    const auto start = steady_clock::now();
    asio::co_spawn(strand, asio_root(n, gate, strand), asio::detached);
    while (suspended.load(std::memory_order_relaxed) != n)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    // The last coroutine may still be inside async_wait: a marker posted to the strand runs
    // after it.
    std::atomic<bool> settled{false};
    asio::post(strand, [&] {
      settled.store(true);
      settled.notify_all();
    });
    settled.wait(false);
    bench::emit_run(ms_since(start));
    const long after = bench::current_rss_bytes();
    const auto wake = steady_clock::now();
    asio::post(strand, [&] { gate.cancel(); });
    woken.wait();
    const double wake_ms = ms_since(wake);
    pool.stop();
    bench::emit_end(extra("timer_cancel", before, after, n, wake_ms));
  } else {
    bench::unknown_system(opts);
  }
}
