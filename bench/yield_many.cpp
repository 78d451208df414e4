// bench/yield_many.cpp: scheduler hop cost. `tasks` tasks each yield `yields` times; operations =
// tasks * yields. weft: weft::yield_now() in tasks spawned by one root task that awaits them all.
// Peer: Asio C++20 coroutines on an io_context run by the same number of threads, each yielding
// with `co_await asio::post(executor, use_awaitable)`.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <vector>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

weft::task<> weft_yielder(long yields) {
  for (long i = 0; i < yields; ++i)
    co_await weft::yield_now();
}

weft::task<> weft_root(long tasks, long yields) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(tasks));
  for (long i = 0; i < tasks; ++i)
    handles.push_back(weft::spawn(weft_yielder(yields)));
  for (auto& handle : handles)
    co_await handle;
}

bench::countdown finished;

asio::awaitable<void> asio_yielder(long yields) {
  auto executor = co_await asio::this_coro::executor;
  for (long i = 0; i < yields; ++i)
    co_await asio::post(executor, asio::use_awaitable);
  finished.arrive();
}

asio::awaitable<void> asio_root(long tasks, long yields) {
  auto executor = co_await asio::this_coro::executor;
  for (long i = 0; i < tasks; ++i)
    asio::co_spawn(executor, asio_yielder(yields), asio::detached);
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long tasks = opts.param("tasks", 200);
  const long yields = opts.param("yields", 1000);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] { rt.block_on(weft_root(tasks, yields)); });
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    bench::run_timed(opts, [&] {
      finished.reset(tasks);
      asio::co_spawn(io, asio_root(tasks, yields), asio::detached);
      finished.wait();
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
