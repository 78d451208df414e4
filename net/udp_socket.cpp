// net/udp_socket.cpp: weft::udp_socket: datagrams on the try-then-wait loop.
#include <weft/net/udp.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/sleep.hpp>

namespace weft {

udp_socket udp_socket::bind(const socket_address& address) {
  auto socket = detail::socket_handle::open(address.family(), SOCK_DGRAM, IPPROTO_UDP);
  if (::bind(socket.fd(), address.data(), address.size()) != 0) {
    detail::throw_net_error(errno, "bind (UDP) to", address.to_string());
  }
  return udp_socket(std::move(socket));
}

udp_socket udp_socket::open(int family) {
  return udp_socket(detail::socket_handle::open(family, SOCK_DGRAM, IPPROTO_UDP));
}

void udp_socket::connect(const socket_address& peer) {
  if (::connect(handle_.fd(), peer.data(), peer.size()) != 0) {
    detail::throw_net_error(errno, "connect (UDP) to", peer.to_string());
  }
  peer_ = peer;
}

task<std::size_t> udp_socket::send_impl(std::string_view datagram, const socket_address* to) {
  // The cooperative budget, as stream_socket::read_some.
  if (detail::budget_exhausted()) co_await yield_now();
  for (;;) {
    const ssize_t n =
        ::sendto(handle_.fd(), datagram.data(), datagram.size(), MSG_NOSIGNAL,
                 to != nullptr ? to->data() : nullptr, to != nullptr ? to->size() : 0);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    const int error = errno;
    if (error == EINTR) continue;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      co_await handle_.io().writable();
      continue;
    }
    detail::throw_net_error(error, "send a datagram to", (to != nullptr ? *to : peer_).to_string());
  }
}

task<std::size_t> udp_socket::send_to(std::string_view datagram, socket_address to) {
  co_return co_await send_impl(datagram, &to);  // `to` lives in this frame while the send runs
}

task<std::size_t> udp_socket::send(std::string_view datagram) {
  return send_impl(datagram, nullptr);
}

task<received_datagram> udp_socket::receive_from(std::span<char> buffer) {
  // The cooperative budget, as stream_socket::read_some: a flood of datagrams cannot hold the
  // worker.
  if (detail::budget_exhausted()) co_await yield_now();
  for (;;) {
    received_datagram result;
    socklen_t size = socket_address::capacity;
    // MSG_TRUNC: the datagram's real length, so a cut one is reported as such.
    const ssize_t n = ::recvfrom(handle_.fd(), buffer.data(), buffer.size(), MSG_TRUNC,
                                 result.from.data(), &size);
    if (n >= 0) {
      result.from.set_size(size);
      result.truncated = static_cast<std::size_t>(n) > buffer.size();
      result.size = result.truncated ? buffer.size() : static_cast<std::size_t>(n);
      co_return result;
    }
    const int error = errno;
    if (error == EINTR) continue;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      co_await handle_.io().readable();
      continue;
    }
    detail::throw_net_error(error, "receive a datagram on", local_address().to_string());
  }
}

task<std::size_t> udp_socket::receive(std::span<char> buffer) {
  received_datagram datagram = co_await receive_from(buffer);
  co_return datagram.size;
}

}  // namespace weft
