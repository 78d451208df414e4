// net/unix_socket.cpp: weft::unix_stream and weft::unix_listener (the stream operations are
// stream_socket's; accept and connect are shared with TCP).
#include <weft/net/unix.hpp>

#include <sys/socket.h>

namespace weft {

task<unix_stream> unix_stream::connect(std::string path) {
  const socket_address address = socket_address::unix_path(path);
  auto socket = detail::socket_handle::open(AF_UNIX, SOCK_STREAM);
  co_await detail::connect_socket(socket, address);
  co_return unix_stream(std::move(socket), address);
}

unix_listener unix_listener::bind(std::string_view path, listen_options options) {
  return unix_listener(
      detail::listen_socket(socket_address::unix_path(path), SOCK_STREAM, options));
}

task<unix_stream> unix_listener::accept() {
  socket_address peer;
  detail::socket_handle socket = co_await detail::accept_socket(handle_, peer, reported_);
  co_return unix_stream(std::move(socket), peer);
}

}  // namespace weft
