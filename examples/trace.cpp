// examples/trace.cpp: recording a trace of a run and opening it in a viewer
// (runtime_options::trace_file, or WEFT_TRACE=path for any program). Docs: docs/diagnostics.md,
// "Tracing".
//
// A small pipeline: a producer downloads pages (sleeps stand for the network), hands them through
// a queue to three parsers that share a lock-protected index, and one page is decoded with
// to_thread (a blocking call). The trace shows a track per worker with a slice per task run,
// named after the tasks (spawn_named), the poller's timer firings, the blocking pool's thread, and
// arrows from each spawn to the task's first run and from each wake-up to the resumption.
//
//   Python                                         weft
//   PYTHONASYNCIODEBUG=1 python app.py             WEFT_TRACE=trace.json ./app
//   loop.slow_callback_duration = 0.05             (every run is a slice: sort by duration)
//   asyncio.create_task(parse(), name="parser")    weft::spawn_named("parser", parse(...))
//
// Usage: trace [path]   (default: weft-trace.json in the current directory). Then open the file
// in https://ui.perfetto.dev, chrome://tracing or speedscope. The program exits non-zero if the
// pipeline computes a wrong result or the file is missing.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::trace {

namespace {

using namespace std::chrono_literals;
using examples::check;

// Parsing: a little CPU work per page (about a tenth of a millisecond), so that the runs show.
std::uint64_t parse_page(int page) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (int i = 0; i < 200000; ++i)
    hash = (hash ^ static_cast<std::uint64_t>(page + i)) * 1099511628211ULL;
  return hash;
}

struct index {
  weft::mutex lock;
  int words = 0;
  std::uint64_t checksum = 0;
};

weft::task<void> producer(weft::queue<int>& pages, int count) {
  for (int page = 0; page < count; ++page) {
    co_await weft::sleep(2ms);  // the download
    co_await pages.put(page);
  }
  pages.shutdown();
}

weft::task<void> parser(weft::queue<int>& pages, index& idx) {
  for (;;) {
    int page = 0;
    try {
      page = co_await pages.get();
    } catch (const weft::queue_shut_down&) {
      co_return;
    }
    if (page == 3) {
      // A page that needs a blocking decoder: off the workers, onto the blocking pool.
      co_await weft::to_thread([] { std::this_thread::sleep_for(3ms); });
    }
    const std::uint64_t parsed = parse_page(page);
    auto held = co_await idx.lock.lock();
    idx.words += 10 + page;
    idx.checksum ^= parsed;
    co_await weft::yield_now();  // hold the lock across a suspension: the others queue for it
  }
}

weft::task<int> pipeline(int pages_count) {
  weft::queue<int> pages(4);
  index idx;
  auto produce = weft::spawn_named("producer", producer(pages, pages_count));
  std::vector<weft::join_handle<void>> parsers;
  for (int i = 0; i < 3; ++i)
    parsers.push_back(weft::spawn_named("parser", parser(pages, idx)));
  co_await produce;
  for (auto& p : parsers)
    co_await p;
  std::printf("index checksum %016llx\n", static_cast<unsigned long long>(idx.checksum));
  co_return idx.words;
}

}  // namespace

int run(const std::string& path) {
  constexpr int pages = 20;
  weft::runtime_options options;
  options.worker_threads = 2;
  options.trace_file = path;  // WEFT_TRACE, if set, takes precedence
  int words = 0;
  {
    weft::runtime rt(options);
    words = rt.block_on(pipeline(pages));
  }  // the trace is written when the runtime shuts down
  const int expected = pages * 10 + pages * (pages - 1) / 2;
  std::printf("indexed %d words from %d pages\n", words, pages);
  if (!check(words == expected, "every page is indexed once")) return 1;
  const char* env = std::getenv("WEFT_TRACE");
  const std::string written = env != nullptr && *env != '\0' ? env : path;
  if (!check(std::filesystem::exists(written), "the trace file exists")) return 1;
  std::printf("trace written to %s (%ju bytes): open it in https://ui.perfetto.dev\n",
              written.c_str(), static_cast<std::uintmax_t>(std::filesystem::file_size(written)));
  return 0;
}

}  // namespace examples::trace

#ifndef WEFT_EXAMPLE_NO_MAIN
int main(int argc, char** argv) {
  return examples::trace::run(argc > 1 ? argv[1] : "weft-trace.json");
}
#endif
