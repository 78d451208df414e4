// weft/net/stream_socket.hpp: weft::stream_socket, a connected byte stream (TCP or Unix), the
// common part of tcp_stream and unix_stream.
//
//   std::array<char, 4096> buffer;
//   std::size_t n = co_await stream.read_some(buffer);    // 0: the peer finished sending
//   co_await stream.write_all("hello\n");
//   stream.shutdown_write();                               // half-close: the peer reads EOF
//
// Every operation tries the system call first and waits for readiness only when the kernel has
// nothing (read) or no room (write), so a busy stream costs one syscall per call. Reads and writes
// are cancellation points (and so take part in weft::timeout):
//   - a cancelled read_some has consumed nothing: every byte the kernel holds stays for the next
//     read (the cancellation can only arrive while the task waits, before a byte was taken);
//   - a cancelled (or failed) write_all has sent a prefix of the data: pass `sent` to learn how
//     long; it is updated as bytes leave, so it is exact when the exception arrives.
// SIGPIPE is never raised (MSG_NOSIGNAL): writing to a closed connection throws broken_pipe or
// connection_reset. EINTR and partial writes are handled inside.
//
// One task may read while another writes; two concurrent readers (or writers) are not allowed.
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

class WEFT_API stream_socket {
 public:
  stream_socket() noexcept = default;
  stream_socket(detail::socket_handle handle, const socket_address& peer) noexcept
      : handle_(std::move(handle)), peer_(peer) {}

  // Reads what is available, at most buffer.size() bytes, waiting while there is nothing. Returns
  // 0 at the end of the stream (or for an empty buffer). connection_reset if the peer reset.
  task<std::size_t> read_some(std::span<char> buffer);
  // Writes every byte of `data`, waiting whenever the send buffer is full. If `sent` is given, it
  // counts the bytes the kernel took, as they go (see the cancellation note above).
  task<void> write_all(std::string_view data, std::size_t* sent = nullptr);
  // Writes what fits now (at least one byte, waiting while nothing fits).
  task<std::size_t> write_some(std::string_view data);
  // The non-waiting forms, for callers with their own readiness loop: the byte count, or 0 with
  // would_block set (a read's 0 without would_block is the end of the stream).
  std::size_t try_read(std::span<char> buffer, bool& would_block);
  std::size_t try_write(std::string_view data, bool& would_block);

  // Half-close: the peer's reads see the end of the stream; this side can still read.
  void shutdown_write();
  // Closes the socket (idempotent). Requires: no task waits on it.
  void close() noexcept { handle_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return handle_.valid(); }

  [[nodiscard]] socket_address local_address() const { return handle_.local_address(); }
  [[nodiscard]] const socket_address& peer_address() const noexcept { return peer_; }
  [[nodiscard]] int native_handle() const noexcept { return handle_.fd(); }
  // The poller registration, for code that waits on readiness itself.
  [[nodiscard]] io_source& io() const noexcept { return handle_.io(); }

 protected:
  detail::socket_handle handle_;
  socket_address peer_;
};

}  // namespace weft
