// weft/net/detail/socket_handle.hpp: an owned, non-blocking socket descriptor registered with the
// runtime's poller; the common part of every weft socket type.
//
// Invariant: fd() is valid exactly when io() is; the registration is dropped (EPOLL_CTL_DEL)
// before the descriptor is closed, so the poller never sees a descriptor number that a later
// socket reuses. Closing while a task waits on the socket is not allowed (io_source's rule): the
// owner of a socket closes it from the task that uses it, or after its users finished.
#pragma once

#include <memory>

#include <weft/net/address.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/io.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::detail {

class WEFT_API socket_handle {
 public:
  socket_handle() noexcept;
  // Takes ownership of `fd` (non-blocking) and registers it with the calling worker's runtime. On
  // failure the descriptor is closed and the error thrown.
  explicit socket_handle(int fd);
  // A new socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol); net_error on failure.
  static socket_handle open(int family, int type, int protocol = 0);
  socket_handle(socket_handle&& other) noexcept;
  socket_handle& operator=(socket_handle&& other) noexcept;
  ~socket_handle();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  // Requires: valid().
  [[nodiscard]] io_source& io() const noexcept { return *io_; }
  // Deregisters and closes (idempotent).
  void close() noexcept;

  [[nodiscard]] socket_address local_address() const;

 private:
  int fd_;
  std::unique_ptr<io_source> io_;
};

// Connects `socket` to `to`, waiting for the handshake; net_error (connection_refused, ...) on
// failure. A cancellation point.
WEFT_API task<void> connect_socket(socket_handle& socket, const socket_address& to);

// Accepts one connection on a listening socket, writing the peer's address to `peer`. Out of
// descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), it sleeps 10 ms doubling up to 1 s between
// tries, reports the condition once per episode through the runtime's log hook (`reported`
// remembers it), and goes on when a descriptor is free. A cancellation point.
WEFT_API task<socket_handle> accept_socket(socket_handle& listener, socket_address& peer,
                                           bool& reported);

}  // namespace weft::detail
