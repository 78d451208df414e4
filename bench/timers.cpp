// bench/timers.cpp: n tasks each sleeping `ms` at once; the time from the first spawn until the
// last sleeper finished, and the process's peak memory. Tasks are detached and counted down (no
// handle vector) so that the memory compared is the tasks' own, as in the Asio peer.
// Peers: Asio steady_timer coroutines (here) and Python asyncio.sleep via gather (timers.py).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

bench::countdown left;

weft::task<> weft_sleeper(std::chrono::milliseconds duration) {
  co_await weft::sleep(duration);
  left.arrive();
}

weft::task<> weft_root(long n, std::chrono::milliseconds duration) {
  for (long i = 0; i < n; ++i)
    weft::spawn(weft_sleeper(duration)).detach();
  co_return;
}

asio::awaitable<void> asio_sleeper(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
  left.arrive();
}

asio::awaitable<void> asio_root(long n, std::chrono::milliseconds duration) {
  auto executor = co_await asio::this_coro::executor;
  for (long i = 0; i < n; ++i)
    asio::co_spawn(executor, asio_sleeper(duration), asio::detached);
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  const std::chrono::milliseconds duration(opts.param("ms", 100));
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      left.reset(n);
      rt.spawn(weft_root(n, duration)).detach();
      left.wait();
    });
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    bench::run_timed(opts, [&] {
      left.reset(n);
      asio::co_spawn(io, asio_root(n, duration), asio::detached);
      left.wait();
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
