// weft/net/unix.hpp: weft::unix_stream and weft::unix_listener, stream sockets on a path or an
// abstract name.
//
//   auto listener = weft::unix_listener::bind("@my-service");   // '@': abstract, no file
//   auto client = co_await weft::unix_stream::connect("@my-service");
//   auto server_side = co_await listener.accept();
//
// The streams behave as tcp_stream's (stream_socket.hpp): read_some, write_all, shutdown_write.
// A listener on a path leaves its socket file behind when closed, as the kernel does; binding to
// a path whose file exists is address_in_use (remove a stale file first).
#pragma once

#include <string>
#include <string_view>

#include <weft/net/address.hpp>
#include <weft/net/detail/socket_handle.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/net/tcp.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

class WEFT_API unix_stream : public stream_socket {
 public:
  unix_stream() noexcept = default;
  unix_stream(detail::socket_handle handle, const socket_address& peer) noexcept
      : stream_socket(std::move(handle), peer) {}

  // Connects to `path` ('@name' for an abstract name). connection_refused if nobody listens.
  static task<unix_stream> connect(std::string path);
};

class WEFT_API unix_listener {
 public:
  unix_listener() noexcept = default;
  static unix_listener bind(std::string_view path, listen_options options = {});

  // The next connection. A cancellation point; out of descriptors it backs off as tcp_listener.
  task<unix_stream> accept();

  [[nodiscard]] socket_address local_address() const { return handle_.local_address(); }
  void close() noexcept { handle_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return handle_.valid(); }

 private:
  explicit unix_listener(detail::socket_handle handle) noexcept : handle_(std::move(handle)) {}
  detail::socket_handle handle_;
  bool reported_ = false;
};

}  // namespace weft
