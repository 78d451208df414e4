// bench/ping_pong.cpp: wake-up cost between two tasks. `pairs` pairs of tasks bounce a counter
// `msgs` times through two capacity-1 channels; operations = pairs * msgs messages. weft:
// weft::channel<long>(1). Peer: Asio C++20 coroutines with experimental::concurrent_channel on an
// io_context run by the same number of threads. (Python asyncio.Queue: bench/ping_pong.py.)
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <memory>
#include <vector>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

weft::task<> weft_pinger(weft::channel<long>& out, weft::channel<long>& in, long msgs) {
  for (long i = 0; i < msgs; ++i) {
    co_await out.send(i);
    (void)co_await in.receive();
  }
}

weft::task<> weft_ponger(weft::channel<long>& in, weft::channel<long>& out, long msgs) {
  for (long i = 0; i < msgs; ++i) {
    auto v = co_await in.receive();
    co_await out.send(*v + 1);
  }
}

weft::task<> weft_root(long pairs, long msgs) {
  std::vector<std::unique_ptr<weft::channel<long>>> channels;
  std::vector<weft::task<>> players;
  for (long p = 0; p < pairs; ++p) {
    channels.push_back(std::make_unique<weft::channel<long>>(1));
    channels.push_back(std::make_unique<weft::channel<long>>(1));
    auto& a = *channels[channels.size() - 2];
    auto& b = *channels[channels.size() - 1];
    players.push_back(weft_pinger(a, b, msgs));
    players.push_back(weft_ponger(a, b, msgs));
  }
  co_await weft::gather(std::move(players));
}

using asio_channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
bench::countdown finished;

asio::awaitable<void> asio_pinger(asio_channel& out, asio_channel& in, long msgs) {
  for (long i = 0; i < msgs; ++i) {
    co_await out.async_send(asio::error_code{}, i, asio::use_awaitable);
    (void)co_await in.async_receive(asio::use_awaitable);
  }
  finished.arrive();
}

asio::awaitable<void> asio_ponger(asio_channel& in, asio_channel& out, long msgs) {
  for (long i = 0; i < msgs; ++i) {
    const long v = co_await in.async_receive(asio::use_awaitable);
    co_await out.async_send(asio::error_code{}, v + 1, asio::use_awaitable);
  }
  finished.arrive();
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long pairs = opts.param("pairs", 1000);
  const long msgs = opts.param("msgs", 1000);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] { rt.block_on(weft_root(pairs, msgs)); });
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    bench::run_timed(opts, [&] {
      std::vector<std::unique_ptr<asio_channel>> channels;
      finished.reset(2 * pairs);
      for (long p = 0; p < pairs; ++p) {
        channels.push_back(std::make_unique<asio_channel>(io, 1));
        channels.push_back(std::make_unique<asio_channel>(io, 1));
        auto& a = *channels[channels.size() - 2];
        auto& b = *channels[channels.size() - 1];
        asio::co_spawn(io, asio_pinger(a, b, msgs), asio::detached);
        asio::co_spawn(io, asio_ponger(a, b, msgs), asio::detached);
      }
      finished.wait();
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
