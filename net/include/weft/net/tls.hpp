// weft/net/tls.hpp: TLS on OpenSSL 3 over any weft stream socket (TCP or Unix): weft::tls_context
// and weft::tls_stream.
//
//   // client: verifies the chain against the system store and the host name, sends SNI
//   auto ctx = weft::tls_context::client({.alpn = {"http/1.1"}});
//   auto tcp = co_await weft::tcp_stream::connect("example.com", 443);
//   auto tls = co_await weft::tls_stream::connect(std::move(tcp), ctx, "example.com");
//   co_await tls.write_all("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//   std::size_t n = co_await tls.read_some(buffer);     // 0: the peer sent close_notify
//   co_await tls.shutdown();                            // sends close_notify
//
//   // server
//   auto ctx = weft::tls_context::server({.certificate_file = "cert.pem", .key_file = "key.pem"});
//   auto tls = co_await weft::tls_stream::accept(co_await listener.accept(), ctx);
//
// The TLS engine (an OpenSSL SSL object) reads and writes two memory buffers (memory BIOs); the
// tls_stream moves ciphertext between them and the socket with the socket's own read_some and
// write_all. So the socket's rules hold here too: operations are cancellation points, and a
// tls_stream has the same read_some / write_all interface as a stream_socket (the byte_stream
// concept below), so code written against that interface takes either.
//
// Verification is on by default for clients: the chain must lead to a trusted root (the system
// store, plus any CA given in the options) and the certificate must name the host passed to
// connect() (a DNS name, or an IP literal checked against the IP addresses of the certificate).
// Turning it off takes `dangerously_skip_verification = true`, and nothing else.
//
// Errors: a failure of TLS is weft::tls_error (a net_error) whose what() carries OpenSSL's reason,
// and for a verification failure the verifier's reason too: "weft: TLS handshake with localhost:
// certificate verify failed: self-signed certificate". Socket errors pass through as they are
// (connection_reset, ...). A peer that closes the socket without close_notify is a tls_error
// ("closed without close_notify": the data may have been cut short by an attacker).
//
// Cancellation and failure leave a defined state, never silently lost bytes:
//   - a read_some cancelled while it waits for the socket has consumed nothing (the socket keeps
//     its bytes, the engine keeps any plaintext it decrypted): the stream stays usable;
//   - a cancelled or failed handshake, or a write_all cancelled after part of a record went out,
//     makes the stream unusable: every later operation throws tls_error saying why;
//   - any tls_error makes the stream unusable in the same way.
// One task may read while another writes (the engine is guarded by a lock that is never held
// across a wait); two concurrent readers (or writers) are not allowed, as with stream_socket.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/net/errors.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

// A failure of TLS: the handshake (verification included), a record the engine rejects, a peer
// that closed without close_notify, or use of a stream that an earlier failure made unusable.
// code() is OpenSSL's reason code in tls_category() (0 when the failure is weft's own).
class WEFT_API tls_error : public net_error {
 public:
  using net_error::net_error;
};

// The error category of OpenSSL reason codes (ERR_GET_REASON).
WEFT_API const std::error_category& tls_category() noexcept;

// What a stream read and written as bytes offers: stream_socket, tcp_stream, unix_stream and
// tls_stream all satisfy it.
template <class S>
concept byte_stream = requires(S& s, std::span<char> buffer, std::string_view data) {
  { s.read_some(buffer) } -> std::same_as<task<std::size_t>>;
  { s.write_all(data) } -> std::same_as<task<void>>;
};

struct tls_client_options {
  // Trust the system's CA store (Debian: /etc/ssl/certs). Off: trust only the CAs below.
  bool use_system_store = true;
  // Additional trusted CAs: a PEM file and/or PEM text (one or more certificates).
  std::string ca_file;
  std::string ca_pem;
  // ALPN protocols offered, in order of preference ("h2" is not spoken by weft; "http/1.1").
  std::vector<std::string> alpn;
  // Accept any certificate for any host. For tests against throwaway servers only: it removes
  // every protection TLS gives against an attacker in the middle.
  bool dangerously_skip_verification = false;
};

struct tls_server_options {
  // The certificate chain (leaf first) and the private key, as files or as PEM text (one of the
  // two for each).
  std::string certificate_file;
  std::string key_file;
  std::string certificate_pem;
  std::string key_pem;
  // ALPN protocols the server speaks, in order of preference; the first one the client offers
  // wins. Empty: ALPN is not negotiated.
  std::vector<std::string> alpn;
};

namespace detail {
struct tls_context_state;
struct tls_engine;
}  // namespace detail

// An OpenSSL SSL_CTX: the configuration shared by many connections (certificates, trust, ALPN).
// Cheap to copy (shared); thread-safe to use from many connections at once.
class WEFT_API tls_context {
 public:
  tls_context() noexcept = default;
  // Throws tls_error naming the file or the PEM that does not load.
  // (Two overloads rather than a default argument: GCC 12 destroys a default argument's
  // temporary twice when the call sits inside a co_await expression.)
  static tls_context client();
  static tls_context client(const tls_client_options& options);
  static tls_context server(const tls_server_options& options);

  [[nodiscard]] bool is_server() const noexcept;
  [[nodiscard]] explicit operator bool() const noexcept { return state_ != nullptr; }
  [[nodiscard]] const std::shared_ptr<detail::tls_context_state>& state() const noexcept {
    return state_;
  }

 private:
  explicit tls_context(std::shared_ptr<detail::tls_context_state> state) noexcept
      : state_(std::move(state)) {}
  std::shared_ptr<detail::tls_context_state> state_;
};

class WEFT_API tls_stream {
 public:
  tls_stream() noexcept;
  tls_stream(tls_stream&&) noexcept;
  tls_stream& operator=(tls_stream&&) noexcept;
  ~tls_stream();

  // Runs the client handshake over `socket` (which the tls_stream then owns). `server_name` is
  // sent as SNI (unless it is an IP literal) and checked against the certificate.
  static task<tls_stream> connect(stream_socket socket, const tls_context& context,
                                  std::string server_name);
  // Runs the server handshake over an accepted `socket`.
  static task<tls_stream> accept(stream_socket socket, const tls_context& context);

  // Decrypted bytes, at most buffer.size(), waiting while none are available. 0: the peer sent
  // close_notify (the clean end of the stream).
  task<std::size_t> read_some(std::span<char> buffer);
  // Encrypts and sends every byte of `data`.
  task<void> write_all(std::string_view data);
  // Sends close_notify and half-closes the socket; reading may go on until the peer's
  // close_notify. Idempotent. Does nothing on an unusable stream, except one whose only failure
  // is a read that found the socket ended without close_notify (the engine is sound then).
  task<void> shutdown();
  // Closes the socket at once (no close_notify). Requires: no task waits on the stream.
  void close() noexcept;

  [[nodiscard]] bool is_open() const noexcept;
  // False once a failure or a cancellation made the stream unusable (see above).
  [[nodiscard]] bool is_usable() const noexcept;
  // The ALPN protocol the peers agreed on, or "" if none.
  [[nodiscard]] std::string alpn_protocol() const;
  // The TLS version in use ("TLSv1.3").
  [[nodiscard]] std::string version() const;
  // The underlying socket (its addresses, its descriptor).
  [[nodiscard]] stream_socket& socket() noexcept;

 private:
  std::unique_ptr<detail::tls_engine> engine_;
};

}  // namespace weft
