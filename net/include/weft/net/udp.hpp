// weft/net/udp.hpp: weft::udp_socket, datagrams.
//
//   auto socket = weft::udp_socket::bind(*weft::socket_address::parse("127.0.0.1", 0));
//   co_await socket.send_to("ping", peer);
//   std::array<char, 1500> buffer;
//   auto [size, from, truncated] = co_await socket.receive_from(buffer);
//
//   socket.connect(peer);               // connected mode: send/receive talk to `peer` only
//   co_await socket.send("ping");
//
// A datagram is sent whole or not at all; one that does not fit the receive buffer is cut and
// reported as truncated. receive_from and receive are cancellation points and a cancelled one has
// taken no datagram. In connected mode an ICMP "port unreachable" from the peer shows up as
// connection_refused on a later send or receive, as the kernel reports it.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <weft/net/address.hpp>
#include <weft/net/detail/socket_handle.hpp>
#include <weft/net/errors.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct received_datagram {
  std::size_t size = 0;    // bytes placed in the buffer
  socket_address from;     // the sender
  bool truncated = false;  // the datagram was longer than the buffer; the rest is lost
};

class WEFT_API udp_socket {
 public:
  udp_socket() noexcept = default;
  // A socket bound to `address` (port 0: the kernel picks; local_address() tells which).
  static udp_socket bind(const socket_address& address);
  // An unbound socket of `family` (AF_INET or AF_INET6); the first send binds it.
  static udp_socket open(int family);

  // Connected mode: sends go to `peer` and only its datagrams are received.
  void connect(const socket_address& peer);

  // `datagram`'s bytes must stay valid until the send finishes; `to` is copied.
  task<std::size_t> send_to(std::string_view datagram, socket_address to);
  task<received_datagram> receive_from(std::span<char> buffer);
  // Connected mode only.
  task<std::size_t> send(std::string_view datagram);
  task<std::size_t> receive(std::span<char> buffer);

  [[nodiscard]] socket_address local_address() const { return handle_.local_address(); }
  void close() noexcept { handle_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return handle_.valid(); }
  [[nodiscard]] int native_handle() const noexcept { return handle_.fd(); }

 private:
  explicit udp_socket(detail::socket_handle handle) noexcept : handle_(std::move(handle)) {}
  task<std::size_t> send_impl(std::string_view datagram, const socket_address* to);
  detail::socket_handle handle_;
  socket_address peer_;  // connected mode's peer, for messages
};

}  // namespace weft
