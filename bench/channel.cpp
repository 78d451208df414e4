// bench/channel.cpp: MPMC channel throughput. One producer and one consumer task per worker move
// `items` integers in total through one channel of capacity `cap` (`--lanes N`: N producers and N
// consumers instead of one of each per worker); the sum is checked. weft:
// weft::channel<long>. Peer: Asio experimental::concurrent_channel on an io_context run by the
// same number of threads.
//
// Floor: `--system threads` moves the same items through the ring that a bounded weft::channel
// keeps its values in (detail/mpmc_ring.hpp), driven by plain threads, one per producer and one
// per consumer, that yield the CPU when the ring is full or empty. No runtime, no suspension, no
// waiter list: what is left is the cost of handing items from core to core through shared cache
// lines, which is what a channel's throughput is bounded by once its ends run on different cores
// (docs/architecture.md, "Channel fast path", has the measurements). weft's ratio to it is what
// the runtime adds. Yielding, not spinning with `pause`: on this project's 2-core VM a spinning
// side kept pulling the ring's lines away from the other and moved an item in 36-150 ns, the
// yielding one in 18-19 ns (one producer, one consumer).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <weft/primitives/detail/mpmc_ring.hpp>

#include <weft/weft.hpp>

#include "asio_pool.hpp"
#include "harness.hpp"

namespace {

weft::task<> weft_producer(weft::channel<long>& ch, long from, long to) {
  for (long i = from; i < to; ++i)
    co_await ch.send(i);
}

weft::task<long> weft_consumer(weft::channel<long>& ch) {
  long sum = 0;
  while (auto v = co_await ch.receive())
    sum += *v;
  co_return sum;
}

weft::task<long> weft_root(long items, long cap, long lanes) {
  weft::channel<long> ch(static_cast<std::size_t>(cap));
  std::vector<weft::task<>> producers;
  for (long p = 0; p < lanes; ++p)
    producers.push_back(weft_producer(ch, items * p / lanes, items * (p + 1) / lanes));
  std::vector<weft::join_handle<long>> consumers;
  for (long c = 0; c < lanes; ++c)
    consumers.push_back(weft::spawn(weft_consumer(ch)));
  co_await weft::gather(std::move(producers));
  ch.close();
  long sum = 0;
  for (auto& c : consumers)
    sum += co_await c;
  co_return sum;
}

using asio_channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
bench::countdown producers_done;
bench::countdown consumers_done;
std::atomic<long> asio_sum{0};

asio::awaitable<void> asio_producer(asio_channel& ch, long from, long to) {
  for (long i = from; i < to; ++i) {
    co_await ch.async_send(asio::error_code{}, i, asio::use_awaitable);
  }
  // Asio's close() drops buffered values, so each producer ends with one sentinel; each consumer
  // stops at the first it receives (as many sentinels as consumers).
  co_await ch.async_send(asio::error_code{}, -1, asio::use_awaitable);
  producers_done.arrive();
}

asio::awaitable<void> asio_consumer(asio_channel& ch) {
  long sum = 0;
  for (;;) {
    const long v = co_await ch.async_receive(asio::use_awaitable);
    if (v < 0) break;
    sum += v;
  }
  asio_sum.fetch_add(sum);
  consumers_done.arrive();
}

// The floor: lanes producer threads and lanes consumer threads on one ring; returns the sum.
long threads_floor(long items, long cap, long lanes) {
  using ring = weft::detail::mpmc_ring<long>;
  ring values(static_cast<std::size_t>(cap));
  std::atomic<long> sum{0};
  std::vector<std::thread> threads;
  for (long p = 0; p < lanes; ++p) {
    threads.emplace_back([&values, from = items * p / lanes, to = items * (p + 1) / lanes] {
      for (long i = from; i < to; ++i) {
        long v = i;
        while (values.try_push(v) != ring::push_result::done)
          std::this_thread::yield();
      }
    });
  }
  for (long c = 0; c < lanes; ++c) {
    // Consumer c takes its share of the items (any items: the ring is MPMC), so every consumer
    // knows when to stop without a close.
    threads.emplace_back([&values, &sum, count = items * (c + 1) / lanes - items * c / lanes] {
      long local = 0;
      std::optional<long> v;
      for (long i = 0; i < count; ++i) {
        v.reset();
        while (values.try_pop(v) != ring::pop_result::done)
          std::this_thread::yield();
        local += *v;
      }
      sum.fetch_add(local);
    });
  }
  for (auto& t : threads)
    t.join();
  return sum.load();
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long items = opts.param("items", 10000000);
  const long cap = opts.param("cap", 1024);
  const long lanes = opts.param("lanes", opts.threads);
  const long expected = items * (items - 1) / 2;
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_root(items, cap, lanes)) == expected, "weft channel sum");
    });
  } else if (opts.system == "asio") {
    bench::asio_pool pool(opts.threads);
    auto& io = pool.io();
    bench::run_timed(opts, [&] {
      asio_channel ch(io, static_cast<std::size_t>(cap));
      asio_sum = 0;
      producers_done.reset(lanes);
      consumers_done.reset(lanes);
      for (long c = 0; c < lanes; ++c)
        asio::co_spawn(io, asio_consumer(ch), asio::detached);
      for (long p = 0; p < lanes; ++p) {
        asio::co_spawn(io, asio_producer(ch, items * p / lanes, items * (p + 1) / lanes),
                       asio::detached);
      }
      producers_done.wait();
      consumers_done.wait();
      bench::check(asio_sum.load() == expected, "asio channel sum");
    });
  } else if (opts.system == "threads") {
    bench::run_timed(opts, [&] {
      bench::check(threads_floor(items, cap, lanes) == expected, "threads channel sum");
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
