// tests/scheduler/dlopen_plugin.cpp: a plugin that links libweft, for test_dlopen.cpp, which
// loads it with dlopen from a program that does not link libweft itself (an engine loading a
// plugin, a Python extension module). One entry point, with C linkage for dlsym.
#include <cstdint>
#include <vector>

#include <weft/scheduler/fork_join.hpp>
#include <weft/weft.hpp>

namespace {

weft::task<std::uint64_t> fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto [a, b] = co_await weft::fork_join(fib(n - 1), fib(n - 2));
  co_return a + b;
}

weft::task<> produce(weft::channel<long>& ch, long from, long to) {
  for (long i = from; i < to; ++i)
    co_await ch.send(i);
}

weft::task<long> consume(weft::channel<long>& ch) {
  long sum = 0;
  while (auto v = co_await ch.receive())
    sum += *v;
  co_return sum;
}

// fib(n) through fork_join, plus the sum of 0 .. items - 1 through a bounded channel between
// spawned tasks: frames, workers, wake-ups and the poller, all on the plugin's runtime.
weft::task<std::uint64_t> exercise(int n, long items) {
  const std::uint64_t f = co_await fib(n);
  weft::channel<long> ch(64);
  std::vector<weft::join_handle<long>> consumers;
  for (int c = 0; c < 2; ++c)
    consumers.push_back(weft::spawn(consume(ch)));
  std::vector<weft::task<>> producers;
  producers.push_back(produce(ch, 0, items / 2));
  producers.push_back(produce(ch, items / 2, items));
  co_await weft::gather(std::move(producers));
  ch.close();
  long sum = 0;
  for (auto& c : consumers)
    sum += co_await c;
  co_await weft::sleep(std::chrono::milliseconds(1));
  co_return f + static_cast<std::uint64_t>(sum);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) std::uint64_t weft_plugin_run(int n, long items) {
  weft::runtime rt(weft::runtime_options{.worker_threads = 2});
  return rt.block_on(exercise(n, items));
}
