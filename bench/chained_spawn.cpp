// bench/chained_spawn.cpp: each task spawns the next, n long; the last one wakes the main thread.
// A run repeats the chain `reps` times (started from the main thread each time) so that it is
// long enough to measure; operations = hops = n * reps.
// Peer: Asio C++20 coroutines, each co_spawn-ing the next (detached), io_context run by the same
// number of threads.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

bench::countdown done;

weft::task<> weft_hop(long left) {
  if (left == 0) {
    done.arrive();
  } else {
    weft::spawn(weft_hop(left - 1)).detach();
  }
  co_return;
}

asio::awaitable<void> asio_hop(long left) {
  if (left == 0) {
    done.arrive();
  } else {
    asio::co_spawn(co_await asio::this_coro::executor, asio_hop(left - 1), asio::detached);
  }
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000);
  const long reps = opts.param("reps", 200);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      for (long r = 0; r < reps; ++r) {
        done.reset(1);
        rt.spawn(weft_hop(n - 1)).detach();
        done.wait();
      }
    });
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    bench::run_timed(opts, [&] {
      for (long r = 0; r < reps; ++r) {
        done.reset(1);
        asio::co_spawn(io, asio_hop(n - 1), asio::detached);
        done.wait();
      }
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
