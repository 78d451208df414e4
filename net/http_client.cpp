// net/http_client.cpp: weft::http::client: the per-origin pool, sending a request, reading the
// response head and body with the strict parser, redirects and the retry of a stale connection.
#include <weft/net/http/client.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>

#include <weft/net/http/parser.hpp>
#include <weft/net/http/serializer.hpp>
#include <weft/net/tcp.hpp>
#include <weft/primitives/semaphore.hpp>
#include <weft/primitives/timeout.hpp>

namespace weft::http {

namespace detail {

// One connection to an origin (named apart from the server's detail::connection: one library,
// one definition per name): the transport (plain or TLS), the bytes read and not yet parsed,
// and the response parser that reads them.
struct client_connection {
  std::optional<tcp_stream> plain;
  std::optional<tls_stream> tls;
  std::string in;  // bytes read; [pos, size) not yet consumed by the parser
  std::size_t pos = 0;
  response_parser parser;
  bool received_any = false;  // a byte of the current response arrived

  explicit client_connection(const parser_limits& limits) : parser(limits) {}

  task<std::size_t> read_some(std::span<char> buffer) {
    if (tls) co_return co_await tls->read_some(buffer);
    co_return co_await plain->read_some(buffer);
  }
  task<void> write_all(std::string_view data) {
    if (tls)
      co_await tls->write_all(data);
    else
      co_await plain->write_all(data);
  }
  int fd() { return tls ? tls->socket().native_handle() : plain->native_handle(); }

  // An idle connection the server closed (or wrote to, which HTTP/1.1 never does between
  // responses) must not carry the next request: peek without waiting.
  bool stale() {
    char byte = 0;
    const ssize_t n = ::recv(fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return true;  // 0: closed; > 0: unexpected bytes (a close_notify, say)
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
};

struct origin_pool {
  explicit origin_pool(std::size_t limit) : permits(limit) {}
  semaphore permits;  // one per connection in use or being opened
  std::mutex lock;    // guards idle
  std::vector<std::unique_ptr<client_connection>> idle;
};

inline tls_client_options http11_tls() {
  tls_client_options options;
  options.alpn = {"http/1.1"};
  return options;
}

struct client_state {
  client_options options;
  std::mutex lock;  // guards pools and default_tls
  std::map<std::string, std::shared_ptr<origin_pool>> pools;
  tls_context default_tls;
  // Relaxed: a statistic; nothing is ordered by it.
  std::atomic<std::uint64_t> opened{0};

  std::shared_ptr<origin_pool> pool_for(const std::string& origin) {
    std::lock_guard guard(lock);
    auto& pool = pools[origin];
    if (!pool)
      pool =
          std::make_shared<origin_pool>(std::max<std::size_t>(1, options.connections_per_origin));
    return pool;
  }
  tls_context tls() {
    if (options.tls) return options.tls;
    std::lock_guard guard(lock);
    if (!default_tls) default_tls = tls_context::client(http11_tls());
    return default_tls;
  }
};

// A connection taken from a pool with its permit. Destroyed, it returns the connection to the
// pool if `reusable` (the response was read to its end and allowed keep-alive), else closes it;
// then the permit goes back, so the next waiter finds the idle connection.
struct lease {
  std::shared_ptr<origin_pool> pool;
  std::optional<semaphore::permit> permit;
  std::unique_ptr<client_connection> conn;
  std::string label;  // "GET http://host/x", for messages
  bool reused = false;
  bool keep_alive = false;  // the response head allowed another request
  bool reusable = false;

  lease() = default;
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  ~lease() {
    if (reusable && conn) {
      std::lock_guard guard(pool->lock);
      pool->idle.push_back(std::move(conn));
    }
    conn.reset();
    permit.reset();
  }
};

}  // namespace detail

namespace {

using detail::client_connection;
using detail::client_state;
using detail::lease;

[[noreturn]] void fail(const std::string& label, std::string_view why) {
  throw client_error(std::make_error_code(std::errc::protocol_error),
                     "weft: " + label + ": " + std::string(why));
}

parser_limits response_limits() {
  parser_limits limits;
  limits.max_head_bytes = 64 * 1024;
  limits.max_body_bytes = UINT64_MAX;  // the client counts the body itself (max_body_bytes)
  return limits;
}

// The parser's next event, reading from the connection as needed. A body event's data points
// into c.in and stays valid until the next call.
task<parse_step> next_event(client_connection& c) {
  constexpr std::size_t read_size = 16 * 1024;
  for (;;) {
    const parse_step step = c.parser.parse(std::string_view(c.in).substr(c.pos));
    c.pos += step.consumed;
    if (step.event != parse_event::need_more) co_return step;
    // Everything consumed is done with: drop it, keep the unconsumed rest in order.
    c.in.erase(0, c.pos);
    c.pos = 0;
    const std::size_t old = c.in.size();
    c.in.resize(old + read_size);
    std::size_t n = 0;
    try {
      n = co_await c.read_some(std::span<char>(c.in.data() + old, read_size));
    } catch (...) {
      c.in.resize(old);
      throw;
    }
    c.in.resize(old + n);
    if (n == 0) co_return c.parser.finish();
    c.received_any = true;
  }
}

task<std::unique_ptr<client_connection>> open_connection(client_state& s, const url& u) {
  auto c = std::make_unique<client_connection>(response_limits());
  tcp_stream tcp =
      co_await tcp_stream::connect(u.host, u.port, {.timeout = s.options.connect_timeout});
  tcp.set_nodelay(true);
  if (u.https()) {
    c->tls.emplace(co_await weft::timeout(s.options.connect_timeout,
                                          tls_stream::connect(std::move(tcp), s.tls(), u.host)));
  } else {
    c->plain.emplace(std::move(tcp));
  }
  s.opened.fetch_add(1, std::memory_order_relaxed);
  co_return c;
}

task<std::unique_ptr<lease>> acquire(client_state& s, const url& u) {
  auto l = std::make_unique<lease>();
  l->pool = s.pool_for(u.origin());
  l->permit.emplace(co_await l->pool->permits.acquire());
  {
    std::lock_guard guard(l->pool->lock);
    while (!l->pool->idle.empty()) {
      auto c = std::move(l->pool->idle.back());
      l->pool->idle.pop_back();
      if (!c->stale()) {
        l->conn = std::move(c);
        l->reused = true;
        break;
      }
    }
  }
  if (!l->conn) l->conn = co_await open_connection(s, u);
  co_return l;
}

bool has_body_method(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

task<void> send_request(client_connection& c, const url& u, const client_request& r,
                        const client_options& o) {
  std::vector<header> headers;
  headers.reserve(r.headers.size() + 2);
  const std::string host = u.authority();
  bool has_host = false;
  bool has_agent = false;
  for (const field& f : r.headers) {
    has_host = has_host || iequals(f.name, "host");
    has_agent = has_agent || iequals(f.name, "user-agent");
  }
  if (!has_host) headers.push_back({"Host", host});
  if (!has_agent && !o.user_agent.empty()) headers.push_back({"User-Agent", o.user_agent});
  for (const field& f : r.headers)
    headers.push_back({f.name, f.value});
  const framing body = !r.body.empty() || has_body_method(r.method)
                           ? framing::content_length(r.body.size())
                           : framing::none();
  std::string out;
  write_request_head(out, {r.method, u.target}, headers, body);  // invalid_argument on injection
  out.append(r.body);
  c.received_any = false;
  c.parser.expect_response_to(r.method);
  co_await c.write_all(out);
}

// Reads up to the final (non-1xx) response head and copies it into `info`.
task<void> read_head(lease& l, response_head_info& info) {
  client_connection& c = *l.conn;
  for (;;) {
    const parse_step step = co_await next_event(c);
    switch (step.event) {
      case parse_event::head: {
        const response_head& head = c.parser.head();
        if (head.status < 200) {
          // An interim response (100 Continue, 103): its `complete` follows; skip both.
          const parse_step end = co_await next_event(c);
          if (end.event != parse_event::complete)
            fail(l.label, "a bad interim (1xx) client_response");
          continue;
        }
        info.status = head.status;
        info.reason = std::string(head.reason);
        info.headers.clear();
        for (const header& h : head.headers)
          info.headers.emplace_back(std::string(h.name), std::string(h.value));
        l.keep_alive = head.keep_alive;
        co_return;
      }
      case parse_event::closed:
        fail(l.label, "the server closed the connection without answering");
      case parse_event::error:
        fail(l.label, "the client_response is not valid HTTP/1.1: " +
                          std::string(describe(c.parser.error())));
      default:
        fail(l.label, "the client_response is not valid HTTP/1.1");
    }
  }
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

// Sends `req` (following redirects) and returns once the final response head arrived.
struct detail::client_access {
  static task<response_stream> start(std::shared_ptr<client_state> s, client_request req,
                                     response_stream rs) {
    url u = url::parse(req.url);
    for (int redirects = 0;; ++redirects) {
      for (int attempt = 0;; ++attempt) {
        std::unique_ptr<lease> l = co_await acquire(*s, u);
        l->label = req.method + " " + u.to_string();
        std::exception_ptr failure;
        try {
          co_await send_request(*l->conn, u, req, s->options);
          co_await read_head(*l, rs);
        } catch (const net_error&) {
          failure = std::current_exception();
        }
        if (!failure) {
          rs.lease_ = std::move(l);
          break;
        }
        // A pooled connection the server closed while idle (a race the peek cannot see): try once
        // more on a new connection, but only if nothing of a response came back.
        // Idempotent methods only (RFC 9110 9.2.2): a POST the server may have acted on is not sent
        // twice.
        if (!(l->reused && !l->conn->received_any && attempt == 0 && idempotent(req.method)))
          std::rethrow_exception(failure);
      }
      rs.url = u.to_string();
      rs.done_ = false;
      rs.received_ = 0;
      const auto location = rs.header("location");
      rs.max_body_ = s->options.max_body_bytes;
      if (s->options.max_redirects <= 0 || !is_redirect(rs.status) || !location) co_return rs;
      if (redirects >= s->options.max_redirects)
        fail(rs.lease_->label,
             "more than " + std::to_string(s->options.max_redirects) + " redirects");
      // Read the redirect's body (a short page) so that the connection can serve the next request.
      rs.max_body_ = 64 * 1024;
      try {
        (void)co_await rs.read_all();
      } catch (const client_error&) {
        rs.lease_.reset();  // too long to bother: the connection is closed instead
      }
      const url next = u.resolve(*location);
      if (rs.status == 303 || ((rs.status == 301 || rs.status == 302) && req.method == "POST")) {
        req.method = "GET";
        req.body.clear();
        std::erase_if(req.headers, [](const field& f) { return iequals(f.name, "content-type"); });
      }
      if (next.origin() != u.origin())  // credentials stay with the origin they were meant for
        std::erase_if(req.headers, [](const field& f) {
          return iequals(f.name, "authorization") || iequals(f.name, "cookie");
        });
      u = next;
      rs.lease_.reset();
    }
  }
};

namespace {

task<response_stream> start_stream(std::shared_ptr<client_state> s, client_request req) {
  response_stream rs;
  co_return co_await detail::client_access::start(std::move(s), std::move(req), std::move(rs));
}

task<client_response> fetch_whole(std::shared_ptr<client_state> s, client_request req) {
  response_stream rs = co_await start_stream(s, std::move(req));
  client_response r;
  r.body = co_await rs.read_all();
  static_cast<response_head_info&>(r) = std::move(static_cast<response_head_info&>(rs));
  co_return r;
}

}  // namespace

std::optional<std::string_view> response_head_info::header(std::string_view name) const {
  for (const field& f : headers)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

response_stream::response_stream() noexcept = default;
response_stream::response_stream(response_stream&&) noexcept = default;
response_stream& response_stream::operator=(response_stream&&) noexcept = default;
response_stream::~response_stream() = default;

task<std::string> response_stream::read_chunk() {
  if (done_ || !lease_) co_return std::string();
  client_connection& c = *lease_->conn;
  for (;;) {
    parse_step step;
    try {
      step = co_await next_event(c);
    } catch (...) {
      lease_.reset();  // a connection in an unknown state is closed, never pooled
      throw;
    }
    switch (step.event) {
      case parse_event::body:
        if (step.data.empty()) continue;
        received_ += step.data.size();
        co_return std::string(step.data);
      case parse_event::complete:
        done_ = true;
        // Reusable only if the server allows it and sent nothing beyond this response.
        lease_->reusable = lease_->keep_alive && c.pos == c.in.size();
        lease_.reset();
        co_return std::string();
      default: {
        const std::string label = lease_->label;
        const parse_error error = c.parser.error();
        lease_.reset();
        if (error == parse_error::truncated)
          fail(label, "the server closed the connection in the middle of the body (after " +
                          std::to_string(received_) + " bytes)");
        fail(label,
             "the client_response body is not valid HTTP/1.1: " + std::string(describe(error)));
      }
    }
  }
}

task<std::string> response_stream::read_all() {
  std::string body;
  for (;;) {
    std::string part = co_await read_chunk();
    if (part.empty()) co_return body;
    if (body.size() + part.size() > max_body_) {
      const std::string label = lease_ ? lease_->label : url;
      lease_.reset();
      fail(label, "the body is larger than max_body_bytes (" + std::to_string(max_body_) + ")");
    }
    body.append(part);
  }
}

client::client() : client(client_options{}) {}

client::client(client_options options) : state_(std::make_shared<client_state>()) {
  state_->options = std::move(options);
}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

task<client_response> client::get(std::string url) {
  return get(std::move(url), std::vector<field>{});
}

task<client_response> client::post(std::string url, std::string body, std::string content_type) {
  return post(std::move(url), std::move(body), std::move(content_type), std::vector<field>{});
}

task<client_response> client::get(std::string url, std::vector<field> headers) {
  return request(
      {.method = "GET", .url = std::move(url), .headers = std::move(headers), .body = {}});
}

task<client_response> client::post(std::string url, std::string body, std::string content_type,
                                   std::vector<field> headers) {
  headers.emplace_back("Content-Type", std::move(content_type));
  return request({.method = "POST",
                  .url = std::move(url),
                  .headers = std::move(headers),
                  .body = std::move(body)});
}

task<client_response> client::request(http::client_request req) {
  auto s = state_;
  const auto limit = s->options.request_timeout;
  co_return co_await weft::timeout(limit, fetch_whole(std::move(s), std::move(req)));
}

task<response_stream> client::stream(http::client_request req) {
  auto s = state_;
  const auto limit = s->options.request_timeout;
  co_return co_await weft::timeout(limit, start_stream(std::move(s), std::move(req)));
}

std::uint64_t client::connections_opened() const noexcept {
  return state_->opened.load(std::memory_order_relaxed);
}

std::size_t client::idle_connections() const {
  std::size_t n = 0;
  std::lock_guard guard(state_->lock);
  for (const auto& [origin, pool] : state_->pools) {
    std::lock_guard pool_guard(pool->lock);
    n += pool->idle.size();
  }
  return n;
}

}  // namespace weft::http
