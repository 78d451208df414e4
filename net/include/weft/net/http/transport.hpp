// <weft/net/http/transport.hpp>: the byte stream an HTTP connection runs over. The server reads
// and writes through this interface only, so any stream (plain TCP, TLS over TCP) can carry it.
//
//   options.tls = weft::tls_context::server({.certificate_file = "cert.pem",
//                                            .key_file = "key.pem"});     // HTTPS, ready-made
//   // or any other byte stream, by a factory:
//   options.wrap = [](weft::tcp_stream s) -> weft::task<std::unique_ptr<weft::http::transport>> {
//     co_return std::make_unique<my_transport>(co_await my_handshake(std::move(s)));
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
//   - ending the stream cleanly takes two steps, so that plain TCP pays no coroutine for it:
//     shutdown_write() ends it at once where it can (TCP: a half-close) and returns true; a
//     transport whose end is a message that may have to wait for the peer (TLS: close_notify)
//     returns false, and the server then awaits finish_shutdown() (bounded by write_timeout).
//     shutdown_write() never throws; the server ignores a finish_shutdown() that throws (the
//     peer is gone: the end is over anyway).
//   - close: releases the connection at once (no goodbye); never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include <weft/net/address.hpp>
#include <weft/net/file.hpp>
#include <weft/net/tcp.hpp>
#include <weft/net/tls.hpp>
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
  // True: the end of the stream is sent. False: await finish_shutdown() to send it.
  [[nodiscard]] virtual bool shutdown_write() noexcept = 0;
  // Sends what shutdown_write() left to send; a cancellation point. Default: nothing.
  virtual task<void> finish_shutdown();
  virtual void close() noexcept = 0;
  [[nodiscard]] virtual const socket_address& peer_address() const noexcept = 0;
  // Sends `length` bytes of `f` from `offset` (a response::send_file body); a cancellation
  // point. Default: read in pieces of 64 KiB and write_all each (what TLS does); tcp_transport
  // uses sendfile(2). A file shorter than offset + length is a file_error (EIO).
  virtual task<void> send_file(weft::file& f, std::uint64_t offset, std::uint64_t length);
};

// A plain TCP connection: the server's default transport.
class WEFT_API tcp_transport final : public transport {
 public:
  explicit tcp_transport(tcp_stream stream) noexcept : stream_(std::move(stream)) {}

  task<std::size_t> read_some(std::span<char> buffer) override { return stream_.read_some(buffer); }
  task<void> write_all(std::string_view data) override { return stream_.write_all(data); }
  bool shutdown_write() noexcept override;  // the half-close: always true
  void close() noexcept override { stream_.close(); }
  [[nodiscard]] const socket_address& peer_address() const noexcept override {
    return stream_.peer_address();
  }
  [[nodiscard]] tcp_stream& stream() noexcept { return stream_; }
  // sendfile(2), waiting for the socket while it is full.
  task<void> send_file(weft::file& f, std::uint64_t offset, std::uint64_t length) override;

 private:
  tcp_stream stream_;
};

// TLS over an accepted TCP connection (server_options::tls makes these). Its end is close_notify
// and then a half-close, sent by finish_shutdown().
class WEFT_API tls_transport final : public transport {
 public:
  explicit tls_transport(tls_stream stream) noexcept
      : stream_(std::move(stream)), peer_(stream_.socket().peer_address()) {}

  task<std::size_t> read_some(std::span<char> buffer) override { return stream_.read_some(buffer); }
  task<void> write_all(std::string_view data) override { return stream_.write_all(data); }
  bool shutdown_write() noexcept override { return false; }
  task<void> finish_shutdown() override;
  void close() noexcept override { stream_.close(); }
  [[nodiscard]] const socket_address& peer_address() const noexcept override { return peer_; }
  [[nodiscard]] tls_stream& stream() noexcept { return stream_; }

 private:
  tls_stream stream_;
  socket_address peer_;
};

// Turns an accepted TCP connection into the transport the server speaks HTTP over (a TLS
// handshake, say). It runs in the connection's own task, under the header timeout.
// server_options::tls is the ready-made one for HTTPS.
using transport_factory = std::function<task<std::unique_ptr<transport>>(tcp_stream)>;

}  // namespace weft::http
