// <weft/net/http/server.hpp>: weft::http::server, an HTTP/1.1 server (aiohttp.web's role).
//
//   weft::http::router routes;                                  // <weft/net/http/router.hpp>
//   routes.get("/users/{id}", [](weft::http::request& req) -> weft::task<weft::http::response> {
//     co_return weft::http::response::text(200, "user " + std::string(req.param("id")));
//   });
//   auto srv = co_await weft::http::server::start(routes, "127.0.0.1", 8080);
//   ...
//   co_await srv.shutdown(5s);     // stop accepting, finish what runs, close idle connections
//
// A handler is `task<response>(request&)`. Each connection runs in a task of its own; its
// requests are handled one after another, in the order they arrived, so pipelined responses
// leave in request order. Responses to pipelined requests are batched into one write (at most
// max_pipeline_depth of them), and the next request is read only when the batch is sent, so a
// client that pipelines without reading holds at most one batch and one read buffer.
//
// Bodies stream both ways. request::body is read as it arrives (co_await req.body.read() gives
// the next piece), so an upload larger than memory can be processed in constant space; an
// `Expect: 100-continue` request gets its 100 Continue when the handler first reads the body
// (a handler that answers without reading it never receives it). A response's body is a string,
// or a producer (response::stream) that writes pieces with back-pressure: each write waits until
// the client has taken the previous bytes.
//
// Limits and timeouts (server_options; docs/patterns/http-server-limits.md): a head larger than
// limits.max_head_bytes is 431, a body over limits.max_body_bytes 413, a malformed or ambiguous
// request (every request-smuggling vector the parser knows) 400, each answered with
// `Connection: close` and the connection closed. Beyond max_connections a new connection gets a
// 503 and is closed (over TLS: closed without an answer). The whole head must arrive within
// header_timeout of the request's start (of the accept, for the first request), an idle keep-alive
// connection is closed after keep_alive_timeout, a body must arrive at min_body_rate after a grace
// period, and a response that the client does not take within write_timeout closes the connection.
//
// Cancellation: when the client goes away while its handler runs (the request fully read), the
// handler's task is cancelled: its co_await throws weft::cancelled_error. A handler that throws
// gets a 500 (a weft::http::bad_message: its status), reported through the runtime's log hook.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/file.hpp>
#include <weft/net/http/message.hpp>
#include <weft/net/http/parser.hpp>
#include <weft/net/http/transport.hpp>
#include <weft/net/tcp.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::http {

namespace detail {
class connection;
}

// The body of a request, read as it arrives.
class WEFT_API body_reader {
 public:
  body_reader() noexcept = default;

  // The next piece of the body (chunk framing removed), "" once the body ended. The view is
  // valid until the next call. Throws bad_message (413 body_too_large, 400 for a broken chunked
  // framing or a connection closed half way) and weft::timeout_error when the client sends
  // slower than server_options::min_body_rate.
  task<std::string_view> read();
  // The whole body; bad_message (413) if it is longer than `limit` bytes.
  task<std::string> read_all(std::size_t limit = std::size_t{1} << 20);
  // True once read() returned "" (or the request had no body).
  [[nodiscard]] bool done() const noexcept { return done_; }

 private:
  friend class detail::connection;
  detail::connection* conn_ = nullptr;
  bool done_ = true;
};

struct WEFT_API request {
  std::string_view method;  // views into the request's own copy of its head
  std::string_view target;  // as sent: "/users/7?full=1"
  std::string_view path;    // the target without its query: "/users/7"
  std::string_view query;   // after '?', "" without one: "full=1"
  http::version version = version::http_1_1;
  std::vector<header> headers;
  // The path parameters the router matched ({id} in "/users/{id}"), percent-decoded ("%2F" is
  // '/', matched after splitting, so it never splits a segment); a malformed escape ("%4", "%zz")
  // is answered 400 before any handler runs. The path itself stays as sent.
  std::vector<std::pair<std::string_view, std::string_view>> params;
  body_reader body;
  socket_address peer;
  bool keep_alive = true;

  [[nodiscard]] const header* find(std::string_view name) const noexcept {
    return find_header(headers, name);
  }
  // A header's value, or "".
  [[nodiscard]] std::string_view header_value(std::string_view name) const noexcept {
    const header* h = find(name);
    return h == nullptr ? std::string_view{} : h->value;
  }
  // A path parameter, or "".
  [[nodiscard]] std::string_view param(std::string_view name) const noexcept;

 private:
  friend class detail::connection;
  friend bool decode_params(request& req);
  std::string head_bytes_;  // the start line and header fields, which the views point into
  std::string decoded_;     // decoded parameters (reserved once, so the views stay put)
};

// Percent-decodes req.params in place (the router calls it after a match). False: an escape is
// malformed (the request is answered 400).
WEFT_API bool decode_params(request& req);

// Writes a streamed response body; each write waits until the client took the earlier bytes
// (back-pressure), within server_options::write_timeout.
class WEFT_API body_writer {
 public:
  // Sends `data` (as one chunk when the body is chunked). "" sends nothing.
  task<void> write(std::string_view data);
  // Bytes of body written so far.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }

 private:
  friend class detail::connection;
  explicit body_writer(detail::connection* conn, bool chunked) noexcept
      : conn_(conn), chunked_(chunked) {}
  detail::connection* conn_;
  bool chunked_;
  std::uint64_t written_ = 0;
};

struct WEFT_API response {
  int status = 200;
  std::vector<field> headers;  // no Content-Length or Transfer-Encoding: the server frames
  std::string body;
  // A body produced while it is sent. Chunked, unless stream_length is set (then exactly that
  // many bytes must be written: fewer or more is an error that closes the connection).
  std::function<task<void>(body_writer&)> stream;
  std::optional<std::uint64_t> stream_length;
  // A body sent from a file: `file_length` bytes from `file_offset`. Plain TCP sends it with
  // sendfile(2) (no copy through user space); other transports (TLS) read and write it in
  // pieces. The file is shared so that a response stays copyable.
  std::shared_ptr<weft::file> file_body;
  std::uint64_t file_offset = 0;
  std::uint64_t file_length = 0;

  static response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // 200 with the rest of `f` (from its position to its end, by fstat) as the body:
  //   co_return response::send_file(co_await weft::file::open("logo.png"), "image/png");
  // Throws file_error if the size cannot be read.
  static response send_file(weft::file f, std::string content_type = "application/octet-stream");
  response& header(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
    return *this;
  }
};

using handler = std::function<task<response>(request&)>;

// One line of an access log, given to server_options::access_log after each response.
struct access_log_entry {
  std::string_view method;
  std::string_view target;
  const socket_address* peer = nullptr;
  int status = 0;
  std::uint64_t body_bytes = 0;         // response body bytes sent
  std::chrono::nanoseconds duration{};  // from the head's arrival to the response's last byte
};

struct server_options {
  // Head (431), header count (431), target (414) and body (413) limits.
  parser_limits limits{};
  // A connection beyond it is answered 503 and closed (over TLS, closed without an answer).
  std::size_t max_connections = 10000;
  // The whole head of a request must arrive within this of the request's first byte (of the
  // accept, for a connection's first request): slowloris clients are cut off here.
  std::chrono::milliseconds header_timeout{10000};
  // An idle keep-alive connection (between requests) is closed after this.
  std::chrono::milliseconds keep_alive_timeout{60000};
  // A response write (or one piece of a streamed one) that the client does not take in time
  // closes the connection.
  std::chrono::milliseconds write_timeout{30000};
  // Bodies must arrive at this average rate (bytes per second) once body_rate_grace has passed
  // since the head; slower clients get weft::timeout_error in read() and the connection closes.
  std::uint64_t min_body_rate = 1024;
  std::chrono::milliseconds body_rate_grace{10000};
  // Pipelined responses batched into one write at most.
  std::size_t max_pipeline_depth = 16;
  // A Date header on every response (unless the handler set one), formatted once a second.
  bool date_header = true;
  // Called after each response (on the connection's worker; keep it short).
  std::function<void(const access_log_entry&)> access_log;
  // HTTPS: a server context (tls_context::server with the certificate chain and key) makes every
  // accepted connection run the TLS handshake (within header_timeout) before HTTP; a client
  // that fails it is closed without an answer. Connections end with close_notify.
  tls_context tls;
  // Wraps each accepted connection in another transport (see transport.hpp); it takes
  // precedence over `tls`. Both empty: plain TCP.
  transport_factory wrap;
  listen_options listen{};
  bool nodelay = true;  // TCP_NODELAY on accepted connections
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
  // Stops accepting (close()); connections go on until they end.
  ~server();

  // Listens on host:port (port 0: the kernel picks; port() tells) and serves with `h`.
  static task<server> start(handler h, std::string host, std::uint16_t port,
                            server_options options = {});

  [[nodiscard]] const socket_address& address() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept { return address().port(); }
  // Connections open now.
  [[nodiscard]] std::size_t connections() const noexcept;

  // Stops accepting new connections; the port is released. Idempotent; any thread.
  void close();
  // Graceful shutdown: close(), then close idle keep-alive connections at once and let requests
  // in progress finish (their responses carry `Connection: close`) for up to `grace`; handlers
  // still running then are cancelled. Returns when every connection has ended.
  task<void> shutdown(std::chrono::milliseconds grace);
  // Returns once close() was called and every connection has ended.
  task<void> wait_closed();

 private:
  std::shared_ptr<detail::server_state> state_;
};

}  // namespace weft::http
