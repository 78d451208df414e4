// weft/net/streams.hpp: asyncio's streams: open_connection, start_server, a buffered reader and a
// flow-controlled writer over any stream socket (TCP, Unix).
//
//   Python (asyncio)                                   weft
//   reader, writer = await asyncio.open_connection(    auto [reader, writer] =
//       "example.com", 80)                                 co_await
//       weft::open_connection("example.com", 80);
//   line = await reader.readline()                     std::string line = co_await
//   reader.read_line(); writer.write(data); await writer.drain()           writer.write(data);
//   co_await writer.drain(); writer.close(); await writer.wait_closed()         writer.close();
//   co_await writer.wait_closed(); server = await asyncio.start_server(handle,        auto server =
//   co_await weft::start_server(handle,
//       "127.0.0.1", 0)                                    "127.0.0.1", 0);
//   server.close(); await server.wait_closed()         server.close(); co_await
//   server.wait_closed();
//
// stream_reader keeps what it read in its buffer. read_until and read_line stop at `limit`
// (64 KiB by default, as asyncio): a separator not found within the limit is stream_limit_error,
// never a buffer that grows without bound. A read cancelled half way loses nothing: every byte
// received stays in the buffer for the next read.
//
// stream_writer::write never waits: it hands the kernel what it takes at once and keeps the rest
// in its buffer, which a background task sends as the socket drains. drain() is the flow control
// (asyncio's): once the buffer passed the high water mark (64 KiB) the writer is paused and
// drain() waits until the buffer fell to the low water mark (16 KiB), so a writer that awaits
// drain() after its writes holds at most about `high` plus one write in memory, however slow the
// peer reads. A connection error is thrown by the next write or drain.
//
// start_server accepts on a listener in a task of its own and runs `handler(reader, writer)` for
// each connection in a task of its own. An exception escaping a handler is reported through the
// runtime's log hook (asyncio logs it too) and ends only that connection. server::close() stops
// accepting (the port is released); wait_closed() returns once the accept loop ended and every
// handler finished, the graceful-shutdown pair.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/net/tcp.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

inline constexpr std::size_t default_stream_limit = 64 * 1024;

// asyncio's LimitOverrunError: read_until (or read_line) found no separator within the limit.
// consumed() is how many bytes would have had to be taken. read_until leaves the data in the
// buffer; read_line drops the overlong line (up to its separator if it arrived, else what is
// buffered) so that reading can go on.
class WEFT_API stream_limit_error : public std::runtime_error {
 public:
  stream_limit_error(const std::string& what, std::size_t consumed)
      : std::runtime_error(what), consumed_(consumed) {}
  [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

// asyncio's IncompleteReadError: the stream ended before read_exactly's count or read_until's
// separator. partial() holds the bytes that did arrive (taken from the buffer).
class WEFT_API incomplete_read_error : public std::runtime_error {
 public:
  incomplete_read_error(std::string partial, std::size_t expected);
  [[nodiscard]] const std::string& partial() const noexcept { return partial_; }
  [[nodiscard]] std::size_t expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::size_t expected_;
};

class WEFT_API stream_reader {
 public:
  explicit stream_reader(std::shared_ptr<stream_socket> socket,
                         std::size_t limit = default_stream_limit);
  stream_reader(stream_reader&&) noexcept = default;
  stream_reader& operator=(stream_reader&&) noexcept = default;

  // Up to n bytes: what is buffered, or else what one read brings; "" at the end of the stream.
  task<std::string> read(std::size_t n);
  // Everything up to the end of the stream (asyncio's read(-1): not bounded by the limit).
  task<std::string> read_all();
  // Exactly n bytes; incomplete_read_error if the stream ends first.
  task<std::string> read_exactly(std::size_t n);
  // One line with its '\n'; at the end of the stream, what is left (possibly ""), as asyncio.
  task<std::string> read_line();
  // Up to and including `separator`; incomplete_read_error at the end of the stream,
  // stream_limit_error past the limit.
  task<std::string> read_until(std::string separator);

  // The end of the stream was seen and nothing is buffered.
  [[nodiscard]] bool at_eof() const noexcept { return eof_ && head_ == tail_; }
  [[nodiscard]] std::size_t buffered() const noexcept { return tail_ - head_; }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] stream_socket& socket() const noexcept { return *socket_; }

 private:
  task<void> fill();  // one read_some into the buffer; sets eof_ on 0
  std::string take(std::size_t n);

  std::shared_ptr<stream_socket> socket_;
  std::vector<char> buffer_;  // bytes [head_, tail_) are unread
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
  std::size_t limit_;
  bool eof_ = false;
};

namespace detail {
struct writer_state;
}

class WEFT_API stream_writer {
 public:
  explicit stream_writer(std::shared_ptr<stream_socket> socket);
  stream_writer(stream_writer&&) noexcept = default;
  stream_writer& operator=(stream_writer&&) noexcept = default;
  // Data still buffered keeps going out after the writer is destroyed (asyncio's transport too).
  ~stream_writer() = default;

  // Queues `data`; never waits. Throws the connection's error if it failed, std::logic_error
  // after close().
  void write(std::string_view data);
  // Waits while the writer is paused (see above); rethrows a connection error.
  task<void> drain();
  // asyncio's transport.set_write_buffer_limits; low defaults to high / 4.
  void set_write_buffer_limits(std::size_t high, std::size_t low);
  void set_write_buffer_limits(std::size_t high) { set_write_buffer_limits(high, high / 4); }
  // Bytes written but not yet taken by the kernel.
  [[nodiscard]] std::size_t buffered() const;

  // Half-close once the buffer is sent: the peer reads the end of the stream.
  void write_eof();
  // Sends what is buffered, then shuts the connection down for writing; the descriptor is closed
  // when the reader and writer are gone. Idempotent.
  void close();
  // Once close()'s data has left (or the connection failed).
  task<void> wait_closed();
  // Drops the buffer and resets the connection now.
  void abort();
  [[nodiscard]] bool is_closing() const;
  [[nodiscard]] stream_socket& socket() const;

 private:
  std::shared_ptr<detail::writer_state> state_;
};

// A reader and a writer sharing one connected socket.
WEFT_API std::pair<stream_reader, stream_writer> make_streams(
    std::shared_ptr<stream_socket> socket, std::size_t limit = default_stream_limit);

// asyncio.open_connection: connects (tcp_stream::connect: lookup, Happy Eyeballs, timeout).
WEFT_API task<std::pair<stream_reader, stream_writer>> open_connection(
    std::string host, std::uint16_t port, connect_options options = {},
    std::size_t limit = default_stream_limit);

using connection_handler = std::function<task<void>(stream_reader, stream_writer)>;

struct server_options {
  std::size_t limit = default_stream_limit;  // each connection's reader limit
  listen_options listen;
};

namespace detail {
struct server_state;
}

class WEFT_API server {
 public:
  server() noexcept = default;
  explicit server(std::shared_ptr<detail::server_state> state) noexcept;
  server(server&&) noexcept = default;
  server& operator=(server&&) noexcept = default;
  // Stops accepting (close()); running handlers go on.
  ~server();

  // Where it listens (the kernel's port when asked for port 0).
  [[nodiscard]] const socket_address& address() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept { return address().port(); }
  [[nodiscard]] bool is_serving() const noexcept;
  // Stops accepting new connections and releases the port. Idempotent; any thread.
  void close();
  // Returns once close() was called, the accept loop ended and every handler finished.
  task<void> wait_closed();

 private:
  std::shared_ptr<detail::server_state> state_;
};

// asyncio.start_server: listens on host:port and serves each connection with `handler`.
WEFT_API task<server> start_server(connection_handler handler, std::string host, std::uint16_t port,
                                   server_options options = {});

}  // namespace weft
