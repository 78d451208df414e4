// <weft/net/http/client.hpp>: weft::http::client, an HTTP/1.1 and HTTPS client with a connection
// pool per origin (aiohttp's ClientSession).
//
//   weft::http::client session;                                  // one per program, shared
//   weft::http::response r = co_await session.get("http://127.0.0.1:8080/items?page=2");
//   if (r.status == 200) use(r.body);
//   co_await session.post(url, "{\"a\":1}", "application/json");
//
//   // A large body, read as it arrives (the connection goes back to the pool at its end):
//   weft::http::response_stream s = co_await session.stream({.url = url});
//   for (std::string chunk; !(chunk = co_await s.read_chunk()).empty();) write(chunk);
//
// Pool: at most `connections_per_origin` connections to one scheme://host:port at a time; a
// request that finds them all busy waits (FIFO) for one. A connection whose response was read to
// its end and allowed keep-alive goes back to the pool and serves the next request; an idle
// connection the server has closed meanwhile is noticed (peeked) and dropped before reuse, and a
// reused connection that fails before any byte of the response came back is retried once on a
// new connection.
//
// Timeouts are weft::timeout_error: connect_timeout bounds the connect and the TLS handshake,
// request_timeout the whole request: for client::request (get, post) up to the last byte of the
// body; for client::stream up to the response head (wrap the body reads in weft::timeout as
// needed). Redirects are followed only when `max_redirects` > 0: 301, 302 and 303 turn a POST
// into a GET without body (as browsers and aiohttp do), 307 and 308 repeat the request as it was.
//
// Errors: a URL that is not http(s) with a host is url_error (std::invalid_argument) before any
// I/O; a server that answers with something that is not HTTP, closes in the middle of a response,
// or sends more than max_body_bytes is weft::http::client_error (a net_error) whose what() names
// the request and what went wrong; socket and TLS failures pass through as their own types
// (connection_refused, tls_error, ...). A status of 4xx or 5xx is a response, not an error.
// A client is used from any number of tasks at once; destroy it only when none of its requests
// runs (responses_streams may outlive it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/net/errors.hpp>
#include <weft/net/http/message.hpp>
#include <weft/net/tls.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::http {

// A URL the client cannot use: not http or https, no host, a bad port, spaces or control
// characters.
class WEFT_API url_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The server broke HTTP: a response the parser rejects, a connection closed in the middle of a
// response, a body over max_body_bytes, too many redirects.
class WEFT_API client_error : public net_error {
 public:
  using net_error::net_error;
};

// An http or https URL, split.
struct WEFT_API url {
  std::string scheme;  // "http" or "https" (lower case)
  std::string host;    // a name, an IPv4 literal, or an IPv6 literal without brackets
  std::uint16_t port = 0;
  std::string target = "/";  // path and query, as sent in the request line ("/a/b?c=d")

  // Throws url_error. The fragment (#...) is dropped, as clients never send it.
  static url parse(std::string_view text);
  // Resolves a Location header against this URL: absolute ("https://..."), scheme-relative
  // ("//host/x"), absolute path ("/x") or relative path ("x", "../x").
  [[nodiscard]] url resolve(std::string_view reference) const;

  [[nodiscard]] bool https() const noexcept { return scheme == "https"; }
  // The Host header's value: host, with brackets for IPv6, and the port unless the default.
  [[nodiscard]] std::string authority() const;
  // scheme://authority, the pool's key.
  [[nodiscard]] std::string origin() const;
  [[nodiscard]] std::string to_string() const { return origin() + target; }
};

struct client_request {
  std::string method = "GET";
  std::string url;
  std::vector<field> headers;  // Host, Content-Length and Transfer-Encoding are the client's
  std::string body;            // sent with Content-Length (also when empty for POST, PUT, PATCH)
};

// The part of a response known once its head arrived.
struct WEFT_API response_head_info {
  int status = 0;
  std::string reason;
  std::vector<field> headers;
  std::string url;  // the URL that answered (after redirects)

  // The first header named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

struct client_response : response_head_info {
  std::string body;
};

namespace detail {
struct client_state;
struct lease;
struct client_access;
}  // namespace detail

// A response whose body is read as it arrives. The connection goes back to the pool once the
// body was read to its end; destroyed earlier, it closes the connection.
class WEFT_API response_stream : public response_head_info {
 public:
  response_stream() noexcept;
  response_stream(response_stream&&) noexcept;
  response_stream& operator=(response_stream&&) noexcept;
  ~response_stream();

  // The next part of the body (chunked framing removed), "" at its end. client_error if the
  // server closes early.
  task<std::string> read_chunk();
  // The rest of the body (bounded by max_body_bytes).
  task<std::string> read_all();
  [[nodiscard]] bool done() const noexcept { return done_; }

 private:
  friend struct detail::client_access;
  std::unique_ptr<detail::lease> lease_;
  std::uint64_t max_body_ = 0;
  std::uint64_t received_ = 0;
  bool done_ = false;
};

struct client_options {
  // Connections open at once to one origin (scheme, host, port); more requests wait.
  std::size_t connections_per_origin = 10;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  // 0: a 3xx is returned as it is. n: up to n redirects are followed, then client_error.
  int max_redirects = 0;
  // A buffered body larger than this is client_error (a stream's read_all too).
  std::uint64_t max_body_bytes = std::uint64_t{64} << 20;
  // Set on every request unless the request has its own.
  std::string user_agent = "weft";
  // For https URLs: the default verifies against the system store (tls_context::client()).
  tls_context tls;
};

class WEFT_API client {
 public:
  client();
  explicit client(client_options options);
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  // (Overloads, not default arguments: GCC 12 destroys a default argument's temporary twice
  // when the call sits inside a co_await expression.)
  task<client_response> get(std::string url);
  task<client_response> get(std::string url, std::vector<field> headers);
  task<client_response> post(std::string url, std::string body, std::string content_type);
  task<client_response> post(std::string url, std::string body, std::string content_type,
                             std::vector<field> headers);
  // Any method; the whole body is read (bounded by max_body_bytes).
  task<client_response> request(http::client_request req);
  // The same, returning once the head arrived; the body is read from the response_stream.
  task<response_stream> stream(http::client_request req);

  // Connections opened so far (a measure of reuse).
  [[nodiscard]] std::uint64_t connections_opened() const noexcept;
  // Idle connections kept in the pool now, over every origin.
  [[nodiscard]] std::size_t idle_connections() const;

 private:
  std::shared_ptr<detail::client_state> state_;
};

}  // namespace weft::http
