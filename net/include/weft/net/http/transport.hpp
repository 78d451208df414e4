// <weft/net/http/transport.hpp>: the byte stream an HTTP connection runs over. The server reads
// and writes through this interface only, so any stream (plain TCP, TLS over TCP) can carry it.
//
//   struct my_tls : weft::http::transport { ... };              // wraps a tcp_stream
//   options.wrap = [](weft::tcp_stream s) -> weft::task<std::unique_ptr<weft::http::transport>> {
//     co_return std::make_unique<my_tls>(co_await handshake(std::move(s)));
//   };
//
// What the server needs from a transport (the contract a TLS stream must keep):
//   - read_some: waits until at least one byte is there, returns how many it put in `buffer`;
//     0 means the peer finished sending (a clean end). A cancellation point that consumes nothing
//     when cancelled (the server wraps reads in timeouts and cancels a read that watches for the
//     client going away, then reads again).
//   - write_all: writes every byte, waiting while the peer does not read; a cancellation point
//     (the server bounds each write with a timeout and then closes the connection, so a write
//     cancelled half way need not be resumable).
//   - one reader and one writer may run at the same time (the server never runs two of either);
//   - shutdown_write: sends the end of the stream (TLS: close_notify, then a TCP half-close);
//     close: releases the connection at once. Neither may throw.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include <weft/net/address.hpp>
#include <weft/net/tcp.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::http {

class WEFT_API transport {
 public:
  transport() = default;
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;
  virtual ~transport() = default;

  virtual task<std::size_t> read_some(std::span<char> buffer) = 0;
  virtual task<void> write_all(std::string_view data) = 0;
  virtual void shutdown_write() noexcept = 0;
  virtual void close() noexcept = 0;
  [[nodiscard]] virtual const socket_address& peer_address() const noexcept = 0;
};

// A plain TCP connection: the server's default transport.
class WEFT_API tcp_transport final : public transport {
 public:
  explicit tcp_transport(tcp_stream stream) noexcept : stream_(std::move(stream)) {}

  task<std::size_t> read_some(std::span<char> buffer) override { return stream_.read_some(buffer); }
  task<void> write_all(std::string_view data) override { return stream_.write_all(data); }
  void shutdown_write() noexcept override;
  void close() noexcept override { stream_.close(); }
  [[nodiscard]] const socket_address& peer_address() const noexcept override {
    return stream_.peer_address();
  }
  [[nodiscard]] tcp_stream& stream() noexcept { return stream_; }

 private:
  tcp_stream stream_;
};

// Turns an accepted TCP connection into the transport the server speaks HTTP over (a TLS
// handshake, say). It runs in the connection's own task, under the header timeout.
using transport_factory = std::function<task<std::unique_ptr<transport>>(tcp_stream)>;

}  // namespace weft::http
