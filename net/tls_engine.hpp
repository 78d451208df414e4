// net/tls_engine.hpp (private): what a tls_context and a tls_stream hold: the OpenSSL objects, the
// socket, the locks, and the error helpers shared by net/tls_context.cpp and net/tls_stream.cpp.
#pragma once

#include <openssl/ssl.h>

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <weft/net/tls.hpp>
#include <weft/primitives/mutex.hpp>

namespace weft::detail {

struct tls_context_state {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  bool verify = true;
  std::string alpn_wire;  // the server's ALPN list in wire form (length-prefixed names)
  tls_context_state() = default;
  tls_context_state(const tls_context_state&) = delete;
  tls_context_state& operator=(const tls_context_state&) = delete;
  ~tls_context_state() { SSL_CTX_free(ctx); }
};

// weft's own failures in tls_category() (OpenSSL's reason codes are positive).
enum tls_own_error : int {
  tls_closed_without_notify = -1,
  tls_unusable = -2,
  tls_closed_in_handshake = -3,
};

// The first error on this thread's OpenSSL error queue (and the verifier's result, when the
// failure is a verification) as a tls_error; clears the queue. `operation` and `peer` form the
// message's start: "weft: TLS handshake with localhost".
tls_error make_tls_error(std::string_view operation, std::string_view peer, SSL* ssl);
tls_error make_own_tls_error(std::string_view operation, std::string_view peer, tls_own_error code,
                             std::string_view detail = {});

struct tls_engine {
  stream_socket socket;
  std::string peer;  // for messages: the server name, or the peer's address
  std::shared_ptr<tls_context_state> context;

  // Guards ssl (and its two memory BIOs), failure and shut. Held only around calls into the
  // engine, never across a wait, so a reader and a writer on different workers take turns.
  std::mutex lock;
  SSL* ssl = nullptr;
  BIO* incoming = nullptr;  // ciphertext from the socket, for the engine (owned by ssl)
  BIO* outgoing = nullptr;  // ciphertext from the engine, for the socket (owned by ssl)
  // Non-empty once the stream is unusable: why (the message of the error that broke it).
  std::string failure;
  bool shut = false;
  // The failure is only that the socket's reading side ended without close_notify (the peer's
  // FIN, or our own half-close of the reading side): the engine itself saw no error, so
  // shutdown() may still send our close_notify. Guarded by the lock.
  bool ended_without_notify = false;

  // Orders ciphertext writes to the socket: whoever drains `outgoing` holds it until those bytes
  // left, so records reach the socket in the order the engine made them.
  weft::mutex write_order;

  tls_engine() = default;
  tls_engine(const tls_engine&) = delete;
  tls_engine& operator=(const tls_engine&) = delete;
  ~tls_engine() { SSL_free(ssl); }

  // Takes every byte the engine has produced. Requires: `lock` held.
  std::string drain_outgoing();
};

}  // namespace weft::detail
