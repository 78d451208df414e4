// net/tcp_listener.cpp: weft::tcp_listener: bind, listen and accept (accept.cpp has the
// out-of-descriptors backoff).
#include <weft/net/tcp.hpp>

#include <sys/socket.h>

#include <cerrno>

#include <weft/net/dns.hpp>

namespace weft {

namespace detail {

socket_handle listen_socket(const socket_address& address, int type,
                            const listen_options& options) {
  socket_handle socket = socket_handle::open(address.family(), type);
  const int one = 1;
  if (address.family() != AF_UNIX) {
    if (options.reuse_address &&
        ::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      throw_net_error(errno, "set SO_REUSEADDR for", address.to_string());
    }
    if (options.reuse_port &&
        ::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      throw_net_error(errno, "set SO_REUSEPORT for", address.to_string());
    }
  }
  if (::bind(socket.fd(), address.data(), address.size()) != 0) {
    throw_net_error(errno, "bind to", address.to_string());
  }
  if (type == SOCK_STREAM && ::listen(socket.fd(), options.backlog) != 0) {
    throw_net_error(errno, "listen on", address.to_string());
  }
  return socket;
}

}  // namespace detail

tcp_listener tcp_listener::bind(const socket_address& address, listen_options options) {
  return tcp_listener(detail::listen_socket(address, SOCK_STREAM, options));
}

task<tcp_listener> tcp_listener::bind(std::string host, std::uint16_t port,
                                      listen_options options) {
  const std::vector<socket_address> addresses = co_await resolve(std::move(host), port);
  co_return bind(addresses.front(), options);
}

task<tcp_stream> tcp_listener::accept() {
  socket_address peer;
  detail::socket_handle socket = co_await detail::accept_socket(handle_, peer, reported_);
  co_return tcp_stream(std::move(socket), peer);
}

}  // namespace weft
