// bench/file_read.cpp: 4 KiB random reads of one file, queue depth 64 (design row `file_read`).
// Operations = reads. Systems, one per process:
//   weft          weft::file on its io_uring backend: 64 tasks, each with one read in flight
//   weft_threads  the same tasks on the blocking-pool backend (WEFT_IO_URING=0's fallback)
//   pread         plain pread(2) from `threads` threads, no runtime (the floor)
// The file (mb MiB, in $TMPDIR or /tmp) is written once per process, so it sits in the page cache:
// this measures the cost of each backend's path, not the disk. Every block starts with its own
// index, and each read checks it.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

constexpr std::size_t block = 4096;

std::string make_file(long mb) {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/weft-bench-file-read-" +
                           std::to_string(::getpid());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bench::check(fd >= 0, "create the benchmark file");
  std::vector<char> chunk(1 << 20);
  const std::uint64_t blocks = static_cast<std::uint64_t>(mb) * (1 << 20) / block;
  for (std::uint64_t b = 0; b < blocks;) {
    std::size_t used = 0;
    for (; used < chunk.size() && b < blocks; used += block, ++b) {
      std::memset(chunk.data() + used, static_cast<int>(b & 0xff), block);
      std::memcpy(chunk.data() + used, &b, sizeof b);
    }
    bench::check(::write(fd, chunk.data(), used) == static_cast<ssize_t>(used), "write the file");
  }
  ::close(fd);
  return path;
}

std::uint64_t next(std::uint64_t& x) {  // xorshift64
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

weft::task<long> reader(weft::file& f, long reads, std::uint64_t blocks, std::uint64_t seed) {
  long good = 0;
  std::vector<char> buffer(block);
  for (long i = 0; i < reads; ++i) {
    const std::uint64_t b = next(seed) % blocks;
    const std::size_t n = co_await f.read_at(buffer, b * block);
    std::uint64_t got = 0;
    std::memcpy(&got, buffer.data(), sizeof got);
    good += n == block && got == b;
  }
  co_return good;
}

weft::task<long> weft_reads(std::string path, weft::file_backend backend, long qd, long reads,
                            std::uint64_t blocks, std::uint64_t run) {
  weft::file f = co_await weft::file::open(path, weft::open_mode::read, {.backend = backend});
  std::vector<weft::join_handle<long>> tasks;
  for (long t = 0; t < qd; ++t) {
    tasks.push_back(weft::spawn(reader, std::ref(f), reads / qd, blocks,
                                0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(t + 1) + run));
  }
  long good = 0;
  for (auto& t : tasks)
    good += co_await t;
  co_await f.close();
  co_return good;
}

long pread_reads(const std::string& path, int threads, long reads, std::uint64_t blocks,
                 std::uint64_t run) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bench::check(fd >= 0, "open the benchmark file");
  std::atomic<long> good{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::uint64_t seed = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(t + 1) + run;
      std::vector<char> buffer(block);
      long mine = 0;
      for (long i = 0; i < reads / threads; ++i) {
        const std::uint64_t b = next(seed) % blocks;
        const ssize_t n = ::pread(fd, buffer.data(), block, static_cast<off_t>(b * block));
        std::uint64_t got = 0;
        std::memcpy(&got, buffer.data(), sizeof got);
        mine += n == static_cast<ssize_t>(block) && got == b;
      }
      good.fetch_add(mine, std::memory_order_relaxed);
    });
  }
  for (auto& th : pool)
    th.join();
  ::close(fd);
  return good.load();
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long qd = opts.param("qd", 64);
  const long mb = opts.param("mb", 256);
  // Rounded to what the readers (qd tasks, or `threads` threads) split evenly.
  long reads = opts.param("reads", 131072);
  const std::string path = make_file(mb);
  const std::uint64_t blocks = static_cast<std::uint64_t>(mb) * (1 << 20) / block;
  std::uint64_t run = 0;
  std::string backend_used;
  if (opts.system == "weft" || opts.system == "weft_threads") {
    weft::file_backend backend =
        opts.system == "weft" ? weft::file_backend::io_uring : weft::file_backend::threads;
    if (backend == weft::file_backend::io_uring && weft::io_uring_status()) {
      std::fprintf(stderr, "file_read: io_uring unavailable here (%s): measuring the fallback\n",
                   weft::io_uring_status().message().c_str());
      backend = weft::file_backend::threads;
    }
    backend_used = backend == weft::file_backend::io_uring ? "io_uring" : "threads";
    reads -= reads % qd;
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_reads(path, backend, qd, reads, blocks, ++run)) == reads,
                   "every block read back with its own index");
    });
  } else if (opts.system == "pread") {
    backend_used = "pread";
    reads -= reads % opts.threads;
    bench::run_timed(opts, [&] {
      bench::check(pread_reads(path, opts.threads, reads, blocks, ++run) == reads,
                   "every block read back with its own index");
    });
  } else {
    ::unlink(path.c_str());
    bench::unknown_system(opts);
  }
  ::unlink(path.c_str());
  bench::emit_end("\"backend\":\"" + backend_used + "\",\"reads\":" + std::to_string(reads));
}
