// net/file.cpp: weft::file and its helpers over two backends: io_uring (file_uring.cpp) and the
// runtime's blocking pool (weft::to_thread, here).
//
// Both backends follow one rule: the memory the kernel reads or writes belongs to the operation,
// not to the caller. A call copies the caller's data in (writes) or out (reads) of a buffer the
// operation owns, so a call cancelled while the kernel (or a pool thread, which cannot be
// interrupted) still works on it never writes into a buffer its caller has freed or reused. The
// copy costs a memcpy per call, small beside a system call. Every operation also holds the
// file's shared state, so the descriptor stays open (and its number is not reused) until the
// last operation on it has ended (file_state.hpp).
//
// Positions are kept here, not in the kernel: every read and write is positional (pread,
// pwrite, or io_uring with an offset), so a cancelled read simply leaves the position alone.
#include <weft/net/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include <weft/scheduler/to_thread.hpp>

#include "file_state.hpp"
#include "file_uring.hpp"

namespace weft {

namespace detail {

void throw_file_error(int error, std::string_view operation, const std::string& path) {
  std::string what;
  what.reserve(8 + operation.size() + path.size());
  what.append("weft: ").append(operation).append(" ").append(path);
  const std::error_code code(error, std::system_category());
  switch (error) {
    case ENOENT:
      throw file_not_found(code, what, path);
    case EACCES:
    case EPERM:
      throw file_permission_denied(code, what, path);
    default:
      throw file_error(code, what, path);
  }
}

namespace {

int open_flags(open_mode mode) {
  switch (mode) {
    case open_mode::read:
      return O_RDONLY;
    case open_mode::write:
      return O_WRONLY | O_CREAT | O_TRUNC;
    case open_mode::append:
      return O_WRONLY | O_CREAT | O_APPEND;
    case open_mode::read_write:
      return O_RDWR;
    case open_mode::create_new:
      return O_WRONLY | O_CREAT | O_EXCL;
  }
  return O_RDONLY;
}

file_backend resolve(file_backend wanted, const std::string& path) {
  if (wanted == file_backend::automatic) return default_file_backend();
  if (wanted == file_backend::io_uring) {
    if (const std::error_code probe = io_uring_status()) {
      throw file_error(probe, "weft: use io_uring for " + path, path);
    }
  }
  return wanted;
}

// An operation's reference to a uring_op, dropped when the call ends.
struct op_ref {
  uring_op* op;
  explicit op_ref(uring_op* o) noexcept : op(o) {}
  op_ref(const op_ref&) = delete;
  op_ref& operator=(const op_ref&) = delete;
  ~op_ref() { uring_op::release(op); }
};

// One kernel read of at most max_io_size bytes into `dest` at `offset`: bytes read.
task<std::size_t> read_once(std::shared_ptr<file_state> state, std::span<char> dest,
                            std::uint64_t offset) {
  const std::size_t size = std::min(dest.size(), file::max_io_size);
  if (state->backend == file_backend::io_uring) {
    uring_ring& ring = ring_of_calling_runtime(state->path);
    op_ref ref(
        uring_op::make(uring_op_kind::read, state, static_cast<std::uint32_t>(size), offset));
    const std::int32_t result = co_await uring_wait(ring, ref.op);
    if (result < 0) throw_file_error(-result, "read", state->path);
    std::memcpy(dest.data(), ref.op->data, static_cast<std::size_t>(result));
    co_return static_cast<std::size_t>(result);
  }
  // The pool thread reads into a buffer the call owns; a cancelled call drops it when it ends.
  // Each closure is a named local before it is awaited: GCC 12 destroys a closure temporary with
  // non-trivial captures inside a co_await expression twice.
  auto call = [state, size, offset] {
    auto owned = std::make_unique_for_overwrite<char[]>(size);
    ssize_t n;
    do {
      n = state->seekable ? ::pread(state->fd, owned.get(), size, static_cast<off_t>(offset))
                          : ::read(state->fd, owned.get(), size);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_file_error(errno, "read", state->path);
    return std::pair{static_cast<std::size_t>(n), std::move(owned)};
  };
  auto read = co_await to_thread(std::move(call));
  std::memcpy(dest.data(), read.second.get(), read.first);
  co_return read.first;
}

// One kernel write of at most max_io_size bytes of `data` at `offset`: bytes written (> 0).
task<std::size_t> write_once(std::shared_ptr<file_state> state, std::string_view data,
                             std::uint64_t offset) {
  const std::size_t size = std::min(data.size(), file::max_io_size);
  if (state->backend == file_backend::io_uring) {
    uring_ring& ring = ring_of_calling_runtime(state->path);
    op_ref ref(
        uring_op::make(uring_op_kind::write, state, static_cast<std::uint32_t>(size), offset));
    std::memcpy(ref.op->data, data.data(), size);
    const std::int32_t result = co_await uring_wait(ring, ref.op);
    if (result < 0) throw_file_error(-result, "write", state->path);
    if (result == 0) throw_file_error(EIO, "write (no progress)", state->path);
    co_return static_cast<std::size_t>(result);
  }
  auto call = [state, owned = std::string(data.substr(0, size)), offset] {
    ssize_t n;
    do {
      n = state->seekable
              ? ::pwrite(state->fd, owned.data(), owned.size(), static_cast<off_t>(offset))
              : ::write(state->fd, owned.data(), owned.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_file_error(errno, "write", state->path);
    if (n == 0) throw_file_error(EIO, "write (no progress)", state->path);
    return static_cast<std::size_t>(n);
  };
  co_return co_await to_thread(std::move(call));
}

}  // namespace
}  // namespace detail

file::file() noexcept = default;
file::file(file&&) noexcept = default;
file& file::operator=(file&&) noexcept = default;
file::~file() = default;

file::file(std::shared_ptr<detail::file_state> state, std::uint64_t position) noexcept
    : state_(std::move(state)), position_(position) {}

detail::file_state& file::checked(const char* operation) const {
  if (!state_)
    throw std::logic_error(std::string("weft::file: ") + operation + " on a closed file");
  return *state_;
}

const std::string& file::path() const noexcept {
  static const std::string none;
  return state_ ? state_->path : none;
}

file_backend file::backend() const noexcept {
  return state_ ? state_->backend : file_backend::automatic;
}

int file::native_handle() const noexcept { return state_ ? state_->fd : -1; }

task<file> file::open(std::string path, open_mode mode, open_options options) {
  const file_backend backend = detail::resolve(options.backend, path);
  const int flags = detail::open_flags(mode) | O_CLOEXEC | options.extra_flags;
  const bool at_end = mode == open_mode::append;
  // The result owns the descriptor: if this task is cancelled while open(2) runs, dropping the
  // result closes it.
  // The closure is a named local (GCC 12, see read_once).
  auto call = [path = std::move(path), flags, backend, permissions = options.permissions, at_end] {
    int fd;
    do {
      fd = ::open(path.c_str(), flags, static_cast<mode_t>(permissions));
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) detail::throw_file_error(errno, "open", path);
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int error = errno;
      ::close(fd);
      detail::throw_file_error(error, "stat", path);
    }
    const bool seekable = S_ISREG(info.st_mode) || S_ISBLK(info.st_mode);
    auto shared = std::make_shared<detail::file_state>(fd, path, backend, seekable);
    const std::uint64_t end = at_end ? static_cast<std::uint64_t>(info.st_size) : 0;
    return std::pair{std::move(shared), end};
  };
  auto opened = co_await to_thread(std::move(call));
  co_return file(std::move(opened.first), opened.second);
}

task<std::size_t> file::read_at(std::span<char> buffer, std::uint64_t offset) {
  checked("read_at");
  if (buffer.empty()) co_return 0;
  co_return co_await detail::read_once(state_, buffer, offset);
}

task<std::size_t> file::read(std::span<char> buffer) {
  checked("read");
  if (buffer.empty()) co_return 0;
  const std::size_t n = co_await detail::read_once(state_, buffer, position_);
  position_ += n;
  co_return n;
}

task<std::string> file::read(std::size_t count) {
  checked("read");
  std::string out;
  out.resize(count);
  std::size_t filled = 0;
  while (filled < count) {
    const std::size_t n = co_await detail::read_once(
        state_, std::span<char>(out.data() + filled, count - filled), position_);
    if (n == 0) break;
    filled += n;
    position_ += n;
  }
  out.resize(filled);
  co_return out;
}

task<void> file::write_at(std::string_view data, std::uint64_t offset) {
  checked("write_at");
  while (!data.empty()) {
    const std::size_t n = co_await detail::write_once(state_, data, offset);
    data.remove_prefix(n);
    offset += n;
  }
}

task<void> file::write(std::string_view data) {
  checked("write");
  while (!data.empty()) {
    const std::size_t n = co_await detail::write_once(state_, data, position_);
    data.remove_prefix(n);
    position_ += n;
  }
}

task<void> file::sync() {
  detail::file_state& state = checked("sync");
  if (state.backend == file_backend::io_uring) {
    detail::uring_ring& ring = detail::ring_of_calling_runtime(state.path);
    detail::op_ref ref(detail::uring_op::make(detail::uring_op_kind::fsync, state_, 0, 0));
    const std::int32_t result = co_await detail::uring_wait(ring, ref.op);
    if (result < 0) detail::throw_file_error(-result, "sync", state.path);
    co_return;
  }
  auto call = [shared = state_] {
    if (::fsync(shared->fd) != 0) detail::throw_file_error(errno, "sync", shared->path);
  };
  co_await to_thread(std::move(call));
}

task<void> file::close() {
  checked("close");
  std::shared_ptr<detail::file_state> state = std::move(state_);
  if (state.use_count() != 1) co_return;  // an operation still in flight closes it when it ends
  auto call = [owned = std::move(state)] {
    const int fd = std::exchange(owned->fd, -1);
    // No retry on EINTR: Linux has released the descriptor whatever close returns.
    if (::close(fd) != 0 && errno != EINTR) detail::throw_file_error(errno, "close", owned->path);
  };
  co_await to_thread(std::move(call));
}

generator<std::string> file::lines(std::size_t limit) {
  checked("lines");
  std::vector<char> chunk(64 * 1024);
  std::string line;
  for (;;) {
    const std::size_t n = co_await read(std::span<char>(chunk));
    if (n == 0) break;
    std::size_t start = 0;
    while (start < n) {
      const void* found = std::memchr(chunk.data() + start, '\n', n - start);
      const std::size_t end =
          found != nullptr
              ? static_cast<std::size_t>(static_cast<const char*>(found) - chunk.data())
              : n;
      if (line.size() + (end - start) > limit) {
        detail::throw_file_error(EFBIG,
                                 "read a line longer than " + std::to_string(limit) + " bytes from",
                                 state_->path);
      }
      line.append(chunk.data() + start, end - start);
      if (found == nullptr) break;
      start = end + 1;
      co_yield std::move(line);
      line.clear();
    }
  }
  if (!line.empty()) co_yield std::move(line);
}

task<std::string> read_file(std::string path, open_options options) {
  file f = co_await file::open(std::move(path), open_mode::read, options);
  std::string out;
  // Reads until a read returns 0 (not the size from stat: /proc files report 0, and a file may
  // grow meanwhile), doubling the buffer as it fills.
  out.resize(64 * 1024);
  std::size_t filled = 0;
  for (;;) {
    if (filled == out.size()) out.resize(out.size() * 2);
    const std::size_t n =
        co_await f.read(std::span<char>(out.data() + filled, out.size() - filled));
    if (n == 0) break;
    filled += n;
  }
  out.resize(filled);
  co_await f.close();
  co_return out;
}

task<void> write_file(std::string path, std::string data, open_options options) {
  file f = co_await file::open(std::move(path), open_mode::write, options);
  co_await f.write(data);
  co_await f.close();
}

generator<std::string> read_lines(std::string path, open_options options, std::size_t limit) {
  file f = co_await file::open(std::move(path), open_mode::read, options);
  auto lines = f.lines(limit);
  while (std::optional<std::string> line = co_await lines.next())
    co_yield std::move(*line);
}

}  // namespace weft
