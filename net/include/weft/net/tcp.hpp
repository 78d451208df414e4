// weft/net/tcp.hpp: weft::tcp_stream and weft::tcp_listener.
//
//   // server                                          // client
//   auto listener = weft::tcp_listener::bind(          auto s = co_await weft::tcp_stream::connect(
//       *weft::socket_address::parse("127.0.0.1", 0));     "localhost", port);
//   for (;;) {                                          co_await s.write_all("ping");
//     weft::tcp_stream conn = co_await listener.accept();
//     weft::spawn(serve, std::move(conn)).detach();
//   }
//
// connect resolves the host (weft::resolve: numeric hosts need no lookup) and tries every address
// with Happy Eyeballs (RFC 8305): addresses are interleaved by family (the first family the
// resolver returned first), an attempt starts every `attempt_delay` (250 ms) or as soon as the
// previous one failed, the first connection made wins and the others are cancelled. The whole
// connect, lookup included, is bounded by `timeout` (weft::timeout_error). If every address
// fails, the last address's error is thrown (connection_refused, ...).
//
// accept does not spin when the process runs out of descriptors (EMFILE/ENFILE): it backs off
// 10 ms doubling to 1 s, reports once through the runtime's log hook, and resumes by itself when
// descriptors are free. Sockets are SOCK_NONBLOCK | SOCK_CLOEXEC; listeners set SO_REUSEADDR.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/detail/socket_handle.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct connect_options {
  // The whole connect: lookup and every attempt (weft::timeout_error when it passes).
  std::chrono::milliseconds timeout{30000};
  // RFC 8305's "Connection Attempt Delay": how long an attempt runs alone before the next starts.
  std::chrono::milliseconds attempt_delay{250};
};

class WEFT_API tcp_stream : public stream_socket {
 public:
  tcp_stream() noexcept = default;
  tcp_stream(detail::socket_handle handle, const socket_address& peer) noexcept
      : stream_socket(std::move(handle), peer) {}

  // Resolves `host` and connects to one of its addresses (Happy Eyeballs, see above).
  static task<tcp_stream> connect(std::string host, std::uint16_t port,
                                  connect_options options = {});
  // Connects to one of `addresses` with Happy Eyeballs: they are reordered to alternate families
  // (keeping each family's order), then tried as above.
  static task<tcp_stream> connect(std::vector<socket_address> addresses,
                                  connect_options options = {});

  // TCP_NODELAY: send small writes at once instead of coalescing them (Nagle's algorithm).
  void set_nodelay(bool on);
  // SO_KEEPALIVE, and when `idle` is positive, TCP_KEEPIDLE/TCP_KEEPINTVL (seconds) and
  // TCP_KEEPCNT `probes`.
  void set_keepalive(bool on, std::chrono::seconds idle = std::chrono::seconds(0), int probes = 0);
};

struct listen_options {
  int backlog = SOMAXCONN;
  bool reuse_address = true;  // SO_REUSEADDR: rebind at once after a restart
  bool reuse_port = false;    // SO_REUSEPORT: several listeners share the port
};

class WEFT_API tcp_listener {
 public:
  tcp_listener() noexcept = default;
  // Binds and listens (port 0: the kernel picks one; local_address() tells which).
  // address_in_use if the address is taken.
  static tcp_listener bind(const socket_address& address, listen_options options = {});
  // The same for a host name or numeric host: binds the first address it resolves to.
  static task<tcp_listener> bind(std::string host, std::uint16_t port, listen_options options = {});

  // The next connection. A cancellation point.
  task<tcp_stream> accept();

  [[nodiscard]] socket_address local_address() const { return handle_.local_address(); }
  // Stops listening (idempotent). Requires: no task waits in accept().
  void close() noexcept { handle_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return handle_.valid(); }
  [[nodiscard]] int native_handle() const noexcept { return handle_.fd(); }

 private:
  explicit tcp_listener(detail::socket_handle handle) noexcept : handle_(std::move(handle)) {}
  detail::socket_handle handle_;
  bool reported_ = false;  // the current out-of-descriptors episode was reported
};

namespace detail {
// Happy Eyeballs' order (RFC 8305 section 4): alternate address families, starting with the
// family of the first address, keeping the order within each family.
WEFT_API std::vector<socket_address> interleave_families(std::vector<socket_address> addresses);
// Binds and listens a new socket of `type` at `address` (shared by TCP and Unix listeners).
WEFT_API socket_handle listen_socket(const socket_address& address, int type,
                                     const listen_options& options);
}  // namespace detail

}  // namespace weft
