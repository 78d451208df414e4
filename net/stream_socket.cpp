// net/stream_socket.cpp: reading and writing a connected stream socket, trying the system call
// first and waiting for readiness only when the kernel has nothing to give or no room.
#include <weft/net/stream_socket.hpp>

#include <sys/socket.h>

#include <cerrno>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/sleep.hpp>

namespace weft {

std::size_t stream_socket::try_read(std::span<char> buffer, bool& would_block) {
  for (;;) {
    const ssize_t n = ::recv(handle_.fd(), buffer.data(), buffer.size(), 0);
    if (n >= 0) {
      would_block = false;
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      would_block = true;
      return 0;
    }
    detail::throw_net_error(errno, "read from", peer_.to_string());
  }
}

std::size_t stream_socket::try_write(std::string_view data, bool& would_block) {
  for (;;) {
    // MSG_NOSIGNAL: a closed peer is an EPIPE error here, never a SIGPIPE for the process.
    const ssize_t n = ::send(handle_.fd(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      would_block = false;
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      would_block = true;
      return 0;
    }
    detail::throw_net_error(errno, "write to", peer_.to_string());
  }
}

task<std::size_t> stream_socket::read_some(std::span<char> buffer) {
  if (buffer.empty()) co_return 0;
  // The cooperative budget (runtime_entry_points.hpp). The syscall is tried first and the task
  // waits only on EAGAIN, so against a peer that keeps the socket ready this never suspended: the
  // worker's other tasks did not run and a cancellation was never delivered (shutdown's
  // included). After 128 operations without suspending the task yields, a cancellation point
  // before any byte is taken.
  if (detail::budget_exhausted()) co_await yield_now();
  for (;;) {
    bool would_block = false;
    const std::size_t n = try_read(buffer, would_block);
    if (!would_block) co_return n;
    // The only suspension point: a cancellation arrives here, before any byte was taken.
    co_await handle_.io().readable();
  }
}

task<std::size_t> stream_socket::write_some(std::string_view data) {
  if (data.empty()) co_return 0;
  if (detail::budget_exhausted()) co_await yield_now();  // as read_some
  for (;;) {
    bool would_block = false;
    const std::size_t n = try_write(data, would_block);
    if (!would_block) co_return n;
    co_await handle_.io().writable();
  }
}

task<void> stream_socket::write_all(std::string_view data, std::size_t* sent) {
  while (!data.empty()) {
    // As read_some; a cancellation here leaves `*sent` exact.
    if (detail::budget_exhausted()) co_await yield_now();
    bool would_block = false;
    const std::size_t n = try_write(data, would_block);
    if (would_block) {
      co_await handle_.io().writable();
      continue;
    }
    data.remove_prefix(n);
    if (sent != nullptr) *sent += n;
  }
}

void stream_socket::shutdown_write() {
  if (::shutdown(handle_.fd(), SHUT_WR) != 0 && errno != ENOTCONN) {
    detail::throw_net_error(errno, "shutdown (write side) of", peer_.to_string());
  }
}

}  // namespace weft
