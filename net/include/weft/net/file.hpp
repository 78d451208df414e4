// weft/net/file.hpp: weft::file, files read and written without blocking a worker (aiofiles).
//
//   weft::file f = co_await weft::file::open("data.log", weft::open_mode::append);
//   co_await f.write("one more line\n");
//   co_await f.close();
//
//   std::string text = co_await weft::read_file("config.json");
//   co_await weft::write_file("out.txt", text);
//
//   auto lines = weft::read_lines("access.log");           // a weft::generator<std::string>
//   while (auto line = co_await lines.next()) count += line->starts_with("GET");
//
// Backends. Where the kernel allows it, the I/O goes through io_uring (one ring per runtime,
// created on first use; its completions arrive through an eventfd on the runtime's poller, so no
// thread is added). Otherwise, or with the environment variable WEFT_IO_URING=0, each call runs
// on the runtime's blocking pool (weft::to_thread). io_uring is probed once per process; a
// seccomp profile that forbids it (common in containers) only means the pool is used.
// open_options::backend picks one explicitly (tests and benchmarks run both).
//
// Semantics:
//   - read/write use the file's own position (the offset read or written so far, starting at 0 or,
//     for open_mode::append, at the end); read_at/write_at take an offset and leave the position
//     alone. Calls that use the position must not overlap on one file; read_at and write_at may
//     run concurrently from many tasks.
//   - read returns 0 at the end of the file and may return fewer bytes than asked (never fewer
//     than are left in a regular file, but at most max_io_size per call); write and write_at
//     write everything (partial writes are continued inside).
//   - Every call is a cancellation point. A cancelled call ends at once with cancelled_error;
//     the kernel (or the pool thread) may still finish it, into a buffer the operation owns, so
//     the caller's buffer is never written after the call has ended. A cancelled read leaves the
//     position where it was (the next read returns the same bytes); a cancelled write may have
//     written some of its data: the position counts only the chunks known to be written.
//   - Errors are weft::file_error (a std::system_error) naming the operation, the path and the
//     system's reason: "weft: open /no/such: No such file or directory"; a missing file is
//     weft::file_not_found, a refused one weft::file_permission_denied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <weft/primitives/generator.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

// A failed file operation. code() is the errno; path() the file.
class WEFT_API file_error : public std::system_error {
 public:
  file_error(std::error_code code, const std::string& what, std::string path)
      : std::system_error(code, what), path_(std::move(path)) {}
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// ENOENT (Python's FileNotFoundError).
class WEFT_API file_not_found : public file_error {
 public:
  using file_error::file_error;
};

// EACCES or EPERM (Python's PermissionError).
class WEFT_API file_permission_denied : public file_error {
 public:
  using file_error::file_error;
};

// Python's open() modes.
enum class open_mode : unsigned char {
  read,        // "r": existing file, read only
  write,       // "w": create or truncate, write only
  append,      // "a": create if missing, writes go to the end
  read_write,  // "r+": existing file, read and write
  create_new,  // "x": create; file_error (EEXIST) if it exists
};

enum class file_backend : unsigned char {
  automatic,  // io_uring if available and not turned off by WEFT_IO_URING=0, else threads
  io_uring,   // io_uring; file_error (with the probe's errno) if the kernel refuses it
  threads,    // the runtime's blocking pool
};

struct open_options {
  file_backend backend = file_backend::automatic;
  // Permission bits of a file the call creates (before the umask).
  unsigned permissions = 0644;
  // Extra open(2) flags or'ed in (O_DIRECT, O_SYNC, O_NOATIME, ...). O_CLOEXEC is always set.
  int extra_flags = 0;
};

// Whether this process may use io_uring: the result of the one probe (io_uring_queue_init and a
// check of the opcodes weft uses). Empty error: available. Does not look at WEFT_IO_URING.
WEFT_API std::error_code io_uring_status() noexcept;

// The backend `automatic` resolves to now: threads if the environment variable WEFT_IO_URING is
// "0" (read at each call) or the probe failed, else io_uring.
WEFT_API file_backend default_file_backend() noexcept;

namespace detail {
struct file_state;
}

class WEFT_API file {
 public:
  // The largest number of bytes one read or write call moves through one kernel operation (each
  // operation owns its buffer, so this bounds the memory of a cancelled call).
  static constexpr std::size_t max_io_size = std::size_t{1} << 20;

  // Opens `path` on the blocking pool (open(2) may block on a slow disk or network share).
  static task<file> open(std::string path, open_mode mode = open_mode::read,
                         open_options options = {});

  file() noexcept;
  file(file&&) noexcept;
  file& operator=(file&&) noexcept;
  // Closes the descriptor if close() was not awaited (without reporting errors), once every
  // operation still in the kernel has ended.
  ~file();

  // Reads up to buffer.size() bytes at the position and advances it; 0 at the end of the file.
  task<std::size_t> read(std::span<char> buffer);
  // Reads up to buffer.size() bytes at `offset`.
  task<std::size_t> read_at(std::span<char> buffer, std::uint64_t offset);
  // Up to `count` bytes at the position (fewer at the end of the file; empty there).
  task<std::string> read(std::size_t count);
  // Writes all of `data` at the position and advances it.
  task<void> write(std::string_view data);
  // Writes all of `data` at `offset`.
  task<void> write_at(std::string_view data, std::uint64_t offset);
  // fsync(2): the data and metadata reach the device.
  task<void> sync();
  // Closes the file and reports close(2)'s error. Later calls throw std::logic_error.
  task<void> close();

  // The file's lines without their '\n' (a last line without one is yielded too), read from
  // the position in chunks of 64 KiB. A line longer than `limit` bytes is a file_error (EFBIG)
  // rather than unbounded growth. The file must outlive the generator.
  generator<std::string> lines(std::size_t limit = std::size_t{1} << 20);

  [[nodiscard]] bool is_open() const noexcept { return state_ != nullptr; }
  [[nodiscard]] const std::string& path() const noexcept;
  [[nodiscard]] std::uint64_t position() const noexcept { return position_; }
  void seek(std::uint64_t position) noexcept { position_ = position; }
  [[nodiscard]] file_backend backend() const noexcept;
  // The descriptor (-1 once closed). Stays owned by the file.
  [[nodiscard]] int native_handle() const noexcept;

 private:
  explicit file(std::shared_ptr<detail::file_state> state, std::uint64_t position) noexcept;
  detail::file_state& checked(const char* operation) const;

  std::shared_ptr<detail::file_state> state_;
  std::uint64_t position_ = 0;
};

// The whole file as bytes (aiofiles' `await f.read()`).
WEFT_API task<std::string> read_file(std::string path, open_options options = {});
// Creates or truncates `path` and writes `data` to it.
WEFT_API task<void> write_file(std::string path, std::string data, open_options options = {});
// The lines of `path` (as file::lines), the file owned by the generator.
WEFT_API generator<std::string> read_lines(std::string path, open_options options = {},
                                           std::size_t limit = std::size_t{1} << 20);

// The names of weft's design card (patterns.md, row 7).
namespace fs {
using weft::read_file;
using weft::read_lines;
using weft::write_file;
}  // namespace fs

}  // namespace weft
