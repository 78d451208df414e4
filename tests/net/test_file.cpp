// tests/net/test_file.cpp: weft::file, read_file, write_file and lines, on both backends: every
// case runs once on io_uring and once on the blocking pool. Where this machine refuses io_uring,
// the io_uring cases say so (a doctest MESSAGE with the probe's reason) and check that the probe
// agrees with a direct io_uring_queue_init, instead of passing silently.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/eventually.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

std::string temp_path(const char* name) {
  return "/tmp/weft-test-file-" + std::to_string(::getpid()) + "-" + name;
}

// Content whose every byte depends on its offset, so a misplaced chunk shows.
std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

// True if io_uring can run here; otherwise says why, so the skip is visible in the output.
bool io_uring_here() {
  if (const std::error_code why = weft::io_uring_status()) {
    MESSAGE("io_uring is not available on this machine (" << why.message()
                                                          << "): skipping the io_uring case");
    return false;
  }
  return true;
}

weft::runtime_options options() {
  weft::runtime_options o;
  o.worker_threads = 2;
  return o;
}

struct scoped_file {
  std::string path;
  explicit scoped_file(std::string p) : path(std::move(p)) { ::unlink(path.c_str()); }
  ~scoped_file() { ::unlink(path.c_str()); }
};

void round_trip(weft::file_backend backend) {
  scoped_file tmp(temp_path("round-trip"));
  weft::run(
      [](std::string path, weft::open_options with) -> weft::task<void> {
        weft::file out = co_await weft::file::open(path, weft::open_mode::write, with);
        CHECK(out.backend() == with.backend);
        co_await out.write("hello ");
        co_await out.write("file\n");
        co_await out.write_at("H", 0);
        CHECK(out.position() == 11);
        co_await out.sync();
        co_await out.close();
        CHECK(!out.is_open());

        weft::file in = co_await weft::file::open(path, weft::open_mode::read, with);
        std::array<char, 4> small{};
        CHECK(co_await in.read(small) == 4);
        CHECK(std::string(small.data(), 4) == "Hell");
        CHECK(co_await in.read(100) == "o file\n");
        CHECK(co_await in.read(100) == "");  // the end
        CHECK(co_await in.read_at(small, 6) == 4);
        CHECK(std::string(small.data(), 4) == "file");
        co_await in.close();

        weft::file more = co_await weft::file::open(path, weft::open_mode::append, with);
        CHECK(more.position() == 11);
        co_await more.write("again\n");
        co_await more.close();
        CHECK(co_await weft::read_file(path, with) == "Hello file\nagain\n");
      }(tmp.path, {.backend = backend}),
      options());
}

void large_file(weft::file_backend backend) {
  scoped_file tmp(temp_path("large"));
  const std::string expected = pattern(6 * 1024 * 1024 + 123);  // several max_io_size chunks
  weft::run(
      [](std::string path, weft::open_options with,
         const std::string& content) -> weft::task<void> {
        co_await weft::write_file(path, content, with);
        struct stat info {};
        REQUIRE(::stat(path.c_str(), &info) == 0);
        CHECK(static_cast<std::size_t>(info.st_size) == content.size());
        const std::string back = co_await weft::read_file(path, with);
        CHECK(back.size() == content.size());
        CHECK(back == content);
      }(tmp.path, {.backend = backend}, expected),
      options());
}

void concurrent_reads(weft::file_backend backend) {
  scoped_file tmp(temp_path("concurrent"));
  const std::string expected = pattern(2 * 1024 * 1024);
  weft::run(
      [](std::string path, weft::open_options with,
         const std::string& content) -> weft::task<void> {
        co_await weft::write_file(path, content, with);
        weft::file f = co_await weft::file::open(path, weft::open_mode::read, with);
        // 64 tasks, each reading 256 scattered 4 KiB blocks of the one file at once.
        std::vector<weft::join_handle<int>> readers;
        for (int t = 0; t < 64; ++t) {
          readers.push_back(weft::spawn(
              [](weft::file& shared, const std::string& whole, int index) -> weft::task<int> {
                int wrong = 0;
                std::array<char, 4096> block{};
                for (int i = 0; i < 256; ++i) {
                  const std::uint64_t offset = ((index * 131 + i * 17) % 512) * 4096ULL;
                  const std::size_t n = co_await shared.read_at(block, offset);
                  if (n != block.size() || std::string_view(block.data(), n) !=
                                               std::string_view(whole).substr(offset, n)) {
                    ++wrong;
                  }
                }
                co_return wrong;
              },
              std::ref(f), std::cref(content), t));
        }
        int wrong = 0;
        for (auto& r : readers)
          wrong += co_await r;
        CHECK(wrong == 0);
        co_await f.close();
      }(tmp.path, {.backend = backend}, expected),
      options());
}

void missing_file(weft::file_backend backend) {
  const std::string missing = temp_path("does-not-exist");
  ::unlink(missing.c_str());
  weft::run(
      [](std::string path, weft::open_options with) -> weft::task<void> {
        bool thrown = false;
        try {
          (void)co_await weft::file::open(path, weft::open_mode::read, with);
        } catch (const weft::file_not_found& e) {
          thrown = true;
          CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
          CHECK(e.path() == path);
          CHECK(std::string(e.what()).find(path) != std::string::npos);
          CHECK(std::string(e.what()).find("No such file or directory") != std::string::npos);
        }
        CHECK(thrown);
        CHECK_THROWS_AS(co_await weft::read_file(path, with), weft::file_not_found);
        // A directory cannot be written: a file_error naming the path, not a crash.
        CHECK_THROWS_AS(co_await weft::write_file("/proc", "x", with), weft::file_error);
      }(missing, {.backend = backend}),
      options());
}

void helpers_and_lines(weft::file_backend backend) {
  scoped_file tmp(temp_path("lines"));
  weft::run(
      [](std::string path, weft::open_options with) -> weft::task<void> {
        // 100,000 lines cross many 64 KiB chunk edges; the last one has no newline.
        std::string text;
        for (int i = 0; i < 100000; ++i)
          text += "line " + std::to_string(i) + (i % 3 == 0 ? "" : " with more") + "\n";
        text += "tail";
        co_await weft::write_file(path, text, with);
        CHECK(co_await weft::read_file(path, with) == text);
        int count = 0;
        bool in_order = true;
        auto lines = weft::read_lines(path, with);
        while (auto line = co_await lines.next()) {
          if (count < 100000) {
            in_order = in_order && line->starts_with("line " + std::to_string(count) +
                                                     (count % 3 == 0 ? "" : " "));
          } else {
            CHECK(*line == "tail");
          }
          ++count;
        }
        CHECK(in_order);
        CHECK(count == 100001);
        // The stream combinators take the generator like any other (map, filter, collect).
        auto long_ones = co_await weft::collect<std::vector<std::string>>(
            weft::filter(weft::read_lines(path, with),
                         [](const std::string& l) { return l.ends_with("more"); }));
        CHECK(long_ones.size() == 66666);
        // A line past the limit is an error, not unbounded growth.
        co_await weft::write_file(path, std::string(5000, 'x') + "\n", with);
        auto bounded = weft::read_lines(path, with, 1000);
        CHECK_THROWS_AS(co_await bounded.next(), weft::file_error);
      }(tmp.path, {.backend = backend}),
      options());
}

// Reads a file with a timeout so short that many reads are cancelled while the kernel (or a pool
// thread) is still reading: a cancelled read leaves the position alone, so the retried reads
// reassemble the content exactly, and the buffers the cancelled ones leave behind are theirs
// (ASan would see a write into freed memory).
void cancelled_reads(weft::file_backend backend) {
  scoped_file tmp(temp_path("cancel"));
  const std::string expected = pattern(4 * 1024 * 1024);
  const int cancelled = weft::run(
      [](std::string path, weft::open_options with, const std::string& content) -> weft::task<int> {
        co_await weft::write_file(path, content, with);
        weft::file f = co_await weft::file::open(path, weft::open_mode::read, with);
        std::string back;
        int timeouts = 0;
        for (int attempt = 0; attempt < 100000; ++attempt) {
          std::vector<char> buffer(256 * 1024);
          try {
            // Every fourth attempt has time to finish, so the loop progresses even where every
            // read is slower than the short timeouts (sanitizer builds).
            const auto limit = attempt % 4 == 3 ? std::chrono::microseconds(10s)
                                                : std::chrono::microseconds(attempt % 4 * 300);
            const std::size_t n = co_await weft::timeout(limit, f.read(buffer));
            if (n == 0) break;
            back.append(buffer.data(), n);
          } catch (const weft::timeout_error&) {
            ++timeouts;
          }
        }
        CHECK(back == content);
        co_await f.close();
        co_return timeouts;
      }(tmp.path, {.backend = backend}, expected),
      options());
  MESSAGE("reads cancelled by the timeout: " << cancelled);
}

// A read that cannot complete (an empty FIFO) is cancelled while it waits in the kernel or on a
// pool thread: the task gets cancelled_error at once.
void cancel_blocked_read(weft::file_backend backend) {
  const std::string fifo = temp_path("fifo");
  ::unlink(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A writer end held here, so that the test can unblock a pool thread's read at the end.
  const int writer_end = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(writer_end >= 0);
  weft::run(
      [](std::string path, weft::open_options with, int writer) -> weft::task<void> {
        weft::file f = co_await weft::file::open(path, weft::open_mode::read_write, with);
        auto started = std::chrono::steady_clock::now();
        std::array<char, 16> buffer{};
        // io_uring: twenty reads in turn, each cancelled while the kernel holds it (the first
        // timeouts of 0 ms may cancel before the submit: the refused path).
        const int rounds = with.backend == weft::file_backend::io_uring ? 20 : 1;
        for (int i = 0; i < rounds; ++i) {
          CHECK_THROWS_AS(
              co_await weft::timeout(std::chrono::milliseconds(i % 3 * 10), f.read(buffer)),
              weft::timeout_error);
        }
        CHECK(std::chrono::steady_clock::now() - started < 5s);
        if (with.backend == weft::file_backend::io_uring) {
          // The kernel dropped the cancelled read: the next read gets these bytes.
          REQUIRE(::write(writer, "abc", 3) == 3);
          const std::size_t n = co_await weft::timeout(5s, f.read(buffer));
          CHECK(std::string(buffer.data(), n) == "abc");
        } else {
          // The pool thread's read cannot be interrupted: it runs to its end (asyncio's
          // to_thread rule) and takes these bytes into its own buffer, which it then drops.
          REQUIRE(::write(writer, "abc", 3) == 3);
        }
        co_await f.close();
      }(fifo, {.backend = backend}, writer_end),
      options());
  ::close(writer_end);
  ::unlink(fifo.c_str());
}

// The runtime is destroyed while reads are in flight: nothing leaks (ASan) or crashes.
void shutdown_in_flight(weft::file_backend backend) {
  scoped_file tmp(temp_path("shutdown"));
  const std::string expected = pattern(1024 * 1024);
  {
    weft::runtime rt(options());
    rt.block_on(weft::write_file(tmp.path, expected, {.backend = backend}));
    std::atomic<int> reads{0};
    for (int t = 0; t < 16; ++t) {
      rt.spawn(
            [](std::string path, weft::open_options with,
               std::atomic<int>& counter) -> weft::task<void> {
              weft::file f = co_await weft::file::open(path, weft::open_mode::read, with);
              std::vector<char> buffer(64 * 1024);
              for (;;) {
                (void)co_await f.read_at(buffer, (counter.fetch_add(1) % 16) * 65536ULL);
              }
            },
            tmp.path, weft::open_options{.backend = backend}, std::ref(reads))
          .detach();
    }
    while (reads.load() < 200)
      std::this_thread::sleep_for(1ms);
    CHECK(rt.shutdown(100ms) == 0);  // every reader ended at its cancellation
  }
}

// A reader of a cached file on a one-worker runtime, whose reads may all complete without
// suspending (io_uring serves them from the page cache at submission), must still let the other
// task of its worker run: its reads yield once its budget is spent.
void reader_shares_its_worker(weft::file_backend backend) {
  scoped_file tmp(temp_path("share"));
  weft::runtime_options one = options();
  one.worker_threads = 1;
  weft::runtime rt(one);
  rt.block_on(weft::write_file(tmp.path, pattern(64 * 1024), {.backend = backend}));
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  auto reader = rt.spawn(
      [](std::string path, weft::open_options with, std::atomic<bool>& done,
         std::atomic<long>& counter) -> weft::task<void> {
        weft::file f = co_await weft::file::open(path, weft::open_mode::read, with);
        std::vector<char> buffer(4096);
        while (!done.load()) {
          (void)co_await f.read_at(buffer, 0);
          counter.fetch_add(1);
        }
      },
      tmp.path, weft::open_options{.backend = backend}, std::ref(stop), std::ref(reads));
  while (reads.load() < 100)
    std::this_thread::sleep_for(1ms);
  // Spawned from this thread, so it is queued behind the reader on the only worker.
  auto other = rt.spawn([](std::atomic<bool>& done) -> weft::task<void> {
    done.store(true);
    co_return;
  }(stop));
  CHECK(weft_test::eventually([&] { return other.done(); }));
  stop.store(true);  // ends the reader even if the other task never ran
  CHECK(weft_test::eventually([&] { return reader.done(); }));
  CHECK_NOTHROW(reader.take_result());
}

}  // namespace

TEST_CASE("file: the io_uring probe agrees with a direct io_uring_queue_init") {
  io_uring ring{};
  const int init = io_uring_queue_init(4, &ring, 0);
  if (init == 0) io_uring_queue_exit(&ring);
  const std::string here = init == 0 ? "allowed" : std::strerror(-init);
  const std::string backend =
      weft::default_file_backend() == weft::file_backend::io_uring ? "io_uring" : "threads";
  MESSAGE("io_uring_queue_init here: " << here << "; default backend: " << backend);
  if (init < 0) {
    CHECK(weft::io_uring_status() == std::error_code(-init, std::system_category()));
  } else {
    CHECK(!weft::io_uring_status());
  }
}

TEST_CASE("file: WEFT_IO_URING=0 makes the blocking pool the default backend") {
  weft_test::watchdog dog(60s);
  const char* before = std::getenv("WEFT_IO_URING");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("WEFT_IO_URING", "0", 1);
  CHECK(weft::default_file_backend() == weft::file_backend::threads);
  const weft::file_backend opened = weft::run([]() -> weft::task<weft::file_backend> {
    weft::file f = co_await weft::file::open("/proc/self/status");
    const std::string head = co_await f.read(4);
    CHECK(head == "Name");  // a /proc file: a stream of unknown size, read all the same
    co_return f.backend();
  }());
  CHECK(opened == weft::file_backend::threads);
  ::unsetenv("WEFT_IO_URING");
  CHECK(weft::default_file_backend() ==
        (weft::io_uring_status() ? weft::file_backend::threads : weft::file_backend::io_uring));
  if (before != nullptr) ::setenv("WEFT_IO_URING", saved.c_str(), 1);
}

TEST_CASE("file: asking for io_uring where it is refused is a file_error") {
  if (!weft::io_uring_status()) {
    MESSAGE("io_uring is available here: nothing to refuse");
    return;
  }
  CHECK_THROWS_AS(
      weft::run(weft::read_file("/etc/hostname", {.backend = weft::file_backend::io_uring})),
      weft::file_error);
}

#define WEFT_FILE_CASE(what, fn)                           \
  TEST_CASE("file on io_uring: " what) {                   \
    weft_test::watchdog dog(60s);                          \
    if (io_uring_here()) fn(weft::file_backend::io_uring); \
  }                                                        \
  TEST_CASE("file on threads: " what) {                    \
    weft_test::watchdog dog(60s);                          \
    fn(weft::file_backend::threads);                       \
  }

WEFT_FILE_CASE("written bytes read back the same at the position and at offsets", round_trip)
WEFT_FILE_CASE("a file of several megabytes round trips through write_file and read_file",
               large_file)
WEFT_FILE_CASE("64 tasks reading one file at once all get the right blocks", concurrent_reads)
WEFT_FILE_CASE("a missing file is file_not_found naming the path and the errno", missing_file)
WEFT_FILE_CASE("read_lines yields every line and works with the stream combinators",
               helpers_and_lines)
WEFT_FILE_CASE("reads cancelled mid-flight lose no byte and the retries reassemble the file",
               cancelled_reads)
WEFT_FILE_CASE("a read blocked on an empty fifo ends at once when cancelled", cancel_blocked_read)
WEFT_FILE_CASE("destroying the runtime with reads in flight leaks nothing", shutdown_in_flight)
WEFT_FILE_CASE("a task reading a cached file in a loop lets the other tasks of its worker run",
               reader_shares_its_worker)
