// net/socket_handle.cpp: the owned, registered socket descriptor (socket_handle.hpp) and the
// non-blocking connect every client socket shares.
#include <weft/net/detail/socket_handle.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

#include <weft/net/errors.hpp>
#include <weft/scheduler/sleep.hpp>

namespace weft::detail {

socket_handle::socket_handle() noexcept : fd_(-1) {}

socket_handle::socket_handle(int fd) : fd_(fd) {
  try {
    io_ = std::make_unique<io_source>(fd);
  } catch (...) {
    ::close(fd);
    fd_ = -1;
    throw;
  }
}

socket_handle socket_handle::open(int family, int type, int protocol) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw_net_error(errno, "open a socket", {});
  return socket_handle(fd);
}

socket_handle::socket_handle(socket_handle&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), io_(std::move(other.io_)) {}

socket_handle& socket_handle::operator=(socket_handle&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    io_ = std::move(other.io_);
  }
  return *this;
}

socket_handle::~socket_handle() { close(); }

void socket_handle::close() noexcept {
  if (fd_ < 0) return;
  io_.reset();   // deregister first: the number may be reused as soon as it is closed
  ::close(fd_);  // Linux releases the descriptor even when close reports EINTR: never retry
  fd_ = -1;
}

socket_address socket_handle::local_address() const {
  socket_address result;
  socklen_t size = socket_address::capacity;
  if (::getsockname(fd_, result.data(), &size) != 0) throw_net_error(errno, "getsockname", {});
  result.set_size(size);
  return result;
}

task<void> connect_socket(socket_handle& socket, const socket_address& to) {
  // A Unix socket whose listener's backlog is full answers EAGAIN and does not go on in the
  // background: retry after a short, growing pause.
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (::connect(socket.fd(), to.data(), to.size()) == 0) co_return;
    const int error = errno;
    if (error == EAGAIN) {
      co_await weft::sleep(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
      continue;
    }
    // EINTR on a non-blocking connect: the handshake goes on, as with EINPROGRESS.
    if (error != EINPROGRESS && error != EINTR)
      throw_net_error(error, "connect to", to.to_string());
    break;
  }
  // Readiness may be stale: a socket registered before connect() reports "writable, hung up"
  // at registration, and io_source remembers it. So a wake-up is only a hint: the handshake is
  // over when SO_ERROR has an error or getpeername succeeds.
  for (;;) {
    co_await socket.io().writable();
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    if (error != 0) throw_net_error(error, "connect to", to.to_string());
    socket_address peer;
    socklen_t peer_size = socket_address::capacity;
    if (::getpeername(socket.fd(), peer.data(), &peer_size) == 0) co_return;
    if (errno != ENOTCONN) throw_net_error(errno, "connect to", to.to_string());
  }
}

}  // namespace weft::detail
