// net/tls_stream.cpp: weft::tls_stream: an OpenSSL engine over two memory BIOs, fed from and
// drained to a stream_socket (net/tls_engine.hpp holds the state).
//
// Every call into the engine happens under engine.lock and never spans a wait: the engine is
// asked, its outgoing ciphertext taken, the lock dropped, and only then does the task wait on the
// socket. OpenSSL's error queue is per thread, so an error is read (make_tls_error) in the same
// locked section as the call that raised it, before the task can move to another worker.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <span>
#include <utility>

#include <weft/net/address.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/sleep.hpp>

#include "tls_engine.hpp"

namespace weft {

namespace {

using detail::tls_engine;

std::string describe_peer(const stream_socket& socket) {
  try {
    return socket.peer_address().to_string();
  } catch (...) {
    return {};
  }
}

// Throws tls_error if an earlier failure made the stream unusable. Requires: lock held.
void check_usable(tls_engine& e, std::string_view operation) {
  if (!e.failure.empty())
    throw detail::make_own_tls_error(operation, e.peer, detail::tls_unusable, e.failure);
  if (e.ssl == nullptr)
    throw detail::make_own_tls_error(operation, e.peer, detail::tls_unusable, "closed");
}

// Marks the stream unusable with `why`, unless it already is. Requires: lock held.
void mark_broken(tls_engine& e, std::string why) {
  if (e.failure.empty()) e.failure = std::move(why);
}

// Writes ciphertext to the socket; `e.write_order` must be held. Bytes the socket did not take
// (a failure or a cancellation part way) would leave a record cut short and the engine's record
// numbers ahead of the peer's: the stream is then unusable.
task<void> send_ciphertext(tls_engine& e, const std::string& out) {
  std::size_t sent = 0;
  try {
    co_await e.socket.write_all(out, &sent);
  } catch (...) {
    if (sent < out.size()) {
      std::lock_guard guard(e.lock);
      mark_broken(e, "a write stopped with part of a TLS record unsent");
    }
    throw;
  }
}

// Sends whatever the engine produced (alerts, handshake messages, key-update answers).
task<void> flush(tls_engine& e) {
  auto order = co_await e.write_order.lock();
  std::string out;
  {
    std::lock_guard guard(e.lock);
    if (e.ssl != nullptr) out = e.drain_outgoing();
  }
  if (!out.empty()) co_await send_ciphertext(e, out);
}

// Moves what the socket has into the engine, without waiting: 1 if it fed bytes, 0 at the end of
// the stream, -1 if the socket has nothing now.
//
// The ciphertext passes through a buffer of the thread's, not the stream's, so an idle stream
// holds no read buffer (17 KiB a connection otherwise, most of an idle TLS connection's memory).
// On the heap, allocated by the thread's first read: a thread_local array would sit in libweft's
// static TLS block, which every thread of the process gets, weft's or not (17 KiB each), and for
// which a program that dlopens libweft must have room (the 17 KiB made that fail with glibc's
// default settings; docs/embedding.md). Not a coroutine and never inlined into one: the
// thread_local is read afresh on each call, never carried across a suspension that may resume on
// another thread.
[[gnu::noinline]] int feed_now(tls_engine& e) {
  constexpr std::size_t scratch_bytes = 17 * 1024;  // one TLS record and its overhead
  thread_local std::unique_ptr<char[]> scratch;
  if (scratch == nullptr) scratch = std::make_unique<char[]>(scratch_bytes);  // or bad_alloc
  bool would_block = false;
  const std::size_t n =
      e.socket.try_read(std::span<char>(scratch.get(), scratch_bytes), would_block);
  if (would_block) return -1;
  if (n == 0) return 0;
  std::lock_guard guard(e.lock);
  if (e.ssl == nullptr) return 0;
  BIO_write(e.incoming, scratch.get(), static_cast<int>(n));  // a memory BIO takes all
  return 1;
}

// Reads ciphertext from the socket into the engine. Returns false at the end of the stream.
// A cancellation arrives only before a byte was taken (at the budget's yield, or while the socket
// read waits): nothing lost.
task<bool> feed(tls_engine& e) {
  // The cooperative budget, as stream_socket::read_some.
  if (detail::budget_exhausted()) co_await yield_now();
  for (;;) {
    const int fed = feed_now(e);
    if (fed >= 0) co_return fed == 1;
    co_await e.socket.io().readable();
  }
}

task<void> handshake(tls_engine& e) {
  const std::string_view operation = "TLS handshake with";
  for (;;) {
    int result = 0;
    int error = SSL_ERROR_NONE;
    std::optional<tls_error> failed;
    std::string out;
    {
      std::lock_guard guard(e.lock);
      ERR_clear_error();
      result = SSL_do_handshake(e.ssl);
      if (result != 1) {
        error = SSL_get_error(e.ssl, result);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          failed = detail::make_tls_error(operation, e.peer, e.ssl);
          mark_broken(e, failed->what());
        }
      }
      out = e.drain_outgoing();
    }
    if (!out.empty()) {
      if (failed) {
        // The alert that tells the peer why; the peer may be gone already.
        try {
          co_await e.socket.write_all(out);
        } catch (const net_error&) {
        }
      } else {
        co_await e.socket.write_all(out);
      }
    }
    if (failed) throw *failed;
    if (result == 1) co_return;
    if (error == SSL_ERROR_WANT_READ && !co_await feed(e)) {
      std::lock_guard guard(e.lock);
      mark_broken(e, "the peer closed the connection during the handshake");
      throw detail::make_own_tls_error(operation, e.peer, detail::tls_closed_in_handshake);
    }
  }
}

bool is_ip_literal(const std::string& name) { return socket_address::parse(name, 0).has_value(); }

std::unique_ptr<tls_engine> new_engine(stream_socket socket, const tls_context& context,
                                       std::string peer) {
  if (!context) throw std::invalid_argument("weft: tls_stream: an empty tls_context");
  auto e = std::make_unique<tls_engine>();
  e->socket = std::move(socket);
  e->peer = std::move(peer);
  e->context = context.state();
  ERR_clear_error();
  e->ssl = SSL_new(context.state()->ctx);
  e->incoming = BIO_new(BIO_s_mem());
  e->outgoing = BIO_new(BIO_s_mem());
  if (e->ssl == nullptr || e->incoming == nullptr || e->outgoing == nullptr) {
    BIO_free(e->incoming);
    BIO_free(e->outgoing);
    e->incoming = e->outgoing = nullptr;
    throw detail::make_tls_error("TLS setup for", e->peer, nullptr);
  }
  // An empty memory BIO means "no bytes yet" (retry), not the end of the stream: weft feeds it.
  // (BIO_set_mem_eof_return, without the macro's C cast.)
  BIO_ctrl(e->incoming, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nullptr);
  BIO_ctrl(e->outgoing, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nullptr);
  SSL_set_bio(e->ssl, e->incoming, e->outgoing);  // ssl owns both now
  return e;
}

}  // namespace

tls_stream::tls_stream() noexcept = default;
tls_stream::tls_stream(tls_stream&&) noexcept = default;
tls_stream& tls_stream::operator=(tls_stream&&) noexcept = default;
tls_stream::~tls_stream() = default;

task<tls_stream> tls_stream::connect(stream_socket socket, const tls_context& context,
                                     std::string server_name) {
  if (context.is_server())
    throw std::invalid_argument("weft: tls_stream::connect with a server tls_context");
  // Brackets around an IPv6 literal ("[::1]") are URL syntax, not part of the name.
  if (server_name.size() > 2 && server_name.front() == '[' && server_name.back() == ']') {
    server_name.pop_back();
    server_name.erase(server_name.begin());
  }
  auto e = new_engine(std::move(socket), context, server_name);
  const bool ip = is_ip_literal(server_name);
  if (!ip && !server_name.empty() &&
      SSL_ctrl(e->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               server_name.data()) != 1)
    throw detail::make_tls_error("TLS: setting SNI for", e->peer, nullptr);
  if (context.state()->verify) {
    if (server_name.empty())
      throw std::invalid_argument("weft: tls_stream::connect: verification needs a server name");
    X509_VERIFY_PARAM* param = SSL_get0_param(e->ssl);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                       : SSL_set1_host(e->ssl, server_name.c_str());
    if (set != 1)
      throw detail::make_tls_error("TLS: setting the expected host", server_name, nullptr);
  }
  SSL_set_connect_state(e->ssl);
  co_await handshake(*e);
  tls_stream stream;
  stream.engine_ = std::move(e);
  co_return stream;
}

task<tls_stream> tls_stream::accept(stream_socket socket, const tls_context& context) {
  if (!context.is_server())
    throw std::invalid_argument("weft: tls_stream::accept with a client tls_context");
  std::string peer = describe_peer(socket);
  auto e = new_engine(std::move(socket), context, std::move(peer));
  SSL_set_accept_state(e->ssl);
  co_await handshake(*e);
  tls_stream stream;
  stream.engine_ = std::move(e);
  co_return stream;
}

task<std::size_t> tls_stream::read_some(std::span<char> buffer) {
  if (!engine_) throw detail::make_own_tls_error("TLS read", {}, detail::tls_unusable, "no stream");
  tls_engine& e = *engine_;
  const std::string_view operation = "TLS read from";
  if (buffer.empty()) co_return 0;
  for (;;) {
    int result = 0;
    int error = SSL_ERROR_NONE;
    std::size_t n = 0;
    bool pending_output = false;
    std::optional<tls_error> failed;
    {
      std::lock_guard guard(e.lock);
      check_usable(e, operation);
      ERR_clear_error();
      result = SSL_read_ex(e.ssl, buffer.data(), buffer.size(), &n);
      if (result != 1) {
        error = SSL_get_error(e.ssl, result);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE &&
            error != SSL_ERROR_ZERO_RETURN) {
          failed = detail::make_tls_error(operation, e.peer, e.ssl);
          mark_broken(e, failed->what());
        }
      }
      pending_output = BIO_ctrl_pending(e.outgoing) > 0;
    }
    // Reading may make the engine answer (a TLS 1.3 key update, an alert): send that first.
    if (pending_output) {
      if (failed) {
        try {
          co_await flush(e);
        } catch (const net_error&) {
        }
      } else {
        co_await flush(e);
      }
    }
    if (failed) throw *failed;
    if (result == 1) co_return n;
    if (error == SSL_ERROR_ZERO_RETURN) co_return 0;  // close_notify: the clean end
    if (error == SSL_ERROR_WANT_READ && !co_await feed(e)) {
      std::lock_guard guard(e.lock);
      if (e.failure.empty()) e.ended_without_notify = true;
      mark_broken(e, "the peer closed the connection without close_notify");
      throw detail::make_own_tls_error(operation, e.peer, detail::tls_closed_without_notify);
    }
  }
}

task<void> tls_stream::write_all(std::string_view data) {
  if (!engine_)
    throw detail::make_own_tls_error("TLS write", {}, detail::tls_unusable, "no stream");
  tls_engine& e = *engine_;
  const std::string_view operation = "TLS write to";
  auto order = co_await e.write_order.lock();
  // In pieces, so that the ciphertext held at once stays near 64 KiB whatever data's size.
  constexpr std::size_t piece = 64 * 1024;
  while (!data.empty()) {
    const std::string_view part = data.substr(0, piece);
    std::string out;
    {
      std::lock_guard guard(e.lock);
      check_usable(e, operation);
      if (e.shut)
        throw detail::make_own_tls_error(operation, e.peer, detail::tls_unusable, "after shutdown");
      ERR_clear_error();
      std::size_t written = 0;
      // A memory BIO never pushes back, and renegotiation is off, so the engine takes all of part.
      if (SSL_write_ex(e.ssl, part.data(), part.size(), &written) != 1 || written != part.size()) {
        tls_error failed = detail::make_tls_error(operation, e.peer, e.ssl);
        mark_broken(e, failed.what());
        throw failed;
      }
      out = e.drain_outgoing();
    }
    co_await send_ciphertext(e, out);
    data.remove_prefix(part.size());
  }
}

task<void> tls_stream::shutdown() {
  if (!engine_) co_return;
  tls_engine& e = *engine_;
  auto order = co_await e.write_order.lock();
  std::string out;
  {
    std::lock_guard guard(e.lock);
    // After an end without close_notify the engine is sound: our close_notify may still go out
    // (a server draining its idle connections half-closes their reading side itself).
    if (e.shut || (!e.failure.empty() && !e.ended_without_notify) || e.ssl == nullptr) co_return;
    e.shut = true;
    ERR_clear_error();
    SSL_shutdown(e.ssl);  // 0: our close_notify is queued, the peer's not yet seen; fine
    ERR_clear_error();
    out = e.drain_outgoing();
  }
  if (!out.empty()) co_await send_ciphertext(e, out);
  e.socket.shutdown_write();
}

void tls_stream::close() noexcept {
  if (!engine_) return;
  std::lock_guard guard(engine_->lock);
  if (engine_->failure.empty()) engine_->failure = "closed";
  engine_->socket.close();
}

bool tls_stream::is_open() const noexcept {
  return engine_ != nullptr && engine_->socket.is_open();
}

bool tls_stream::is_usable() const noexcept {
  if (!engine_) return false;
  std::lock_guard guard(engine_->lock);
  return engine_->failure.empty() && engine_->socket.is_open();
}

std::string tls_stream::alpn_protocol() const {
  if (!engine_) return {};
  std::lock_guard guard(engine_->lock);
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(engine_->ssl, &data, &size);
  return std::string(reinterpret_cast<const char*>(data), size);
}

std::string tls_stream::version() const {
  if (!engine_) return {};
  std::lock_guard guard(engine_->lock);
  return SSL_get_version(engine_->ssl);
}

stream_socket& tls_stream::socket() noexcept {
  static stream_socket none;
  return engine_ ? engine_->socket : none;
}

}  // namespace weft
