// net/http_transport.cpp: the transports the HTTP server speaks over: plain TCP (a synchronous
// half-close, sendfile(2) for file bodies) and TLS (close_notify, file bodies through the engine).
#include <weft/net/http/transport.hpp>

#include <sys/sendfile.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <system_error>

#include <weft/net/errors.hpp>

namespace weft::http {

namespace {

file_error file_ended_early(const weft::file& f) {
  return file_error(std::error_code(EIO, std::generic_category()),
                    "weft: send_file " + f.path() + ": the file ended before the announced length",
                    f.path());
}

}  // namespace

task<void> transport::finish_shutdown() { co_return; }

task<void> transport::send_file(weft::file& f, std::uint64_t offset, std::uint64_t length) {
  constexpr std::size_t piece = 64 * 1024;
  auto buffer = std::make_unique_for_overwrite<char[]>(piece);
  while (length > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, piece));
    const std::size_t n = co_await f.read_at(std::span<char>(buffer.get(), want), offset);
    if (n == 0) throw file_ended_early(f);
    co_await write_all(std::string_view(buffer.get(), n));
    offset += n;
    length -= n;
  }
}

bool tcp_transport::shutdown_write() noexcept {
  try {
    stream_.shutdown_write();
  } catch (const std::exception&) {
    // Already reset: there is nothing left to end.
  }
  return true;
}

task<void> tcp_transport::send_file(weft::file& f, std::uint64_t offset, std::uint64_t length) {
  // sendfile(2) copies from the page cache to the socket inside the kernel. On a non-blocking
  // socket it returns what fit (or EAGAIN) and the task waits for room, like write_all. A read
  // of a cold page may block the worker for the disk, as it does for nginx; a handler that
  // serves files from slow storage can read them itself (response::stream) instead.
  constexpr std::size_t per_call = std::size_t{1} << 20;
  while (length > 0) {
    auto at = static_cast<off_t>(offset);
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, per_call));
    const ssize_t n = ::sendfile(stream_.native_handle(), f.native_handle(), &at, want);
    if (n > 0) {
      offset += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) throw file_ended_early(f);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await stream_.io().writable();
      continue;
    }
    if (errno == EINTR) continue;
    detail::throw_net_error(errno, "sendfile to", stream_.peer_address().to_string());
  }
}

task<void> tls_transport::finish_shutdown() { co_await stream_.shutdown(); }

}  // namespace weft::http
