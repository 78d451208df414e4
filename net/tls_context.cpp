// net/tls_context.cpp: weft::tls_context (an SSL_CTX configured for a client or a server), the
// OpenSSL error categories and the error helpers of net/tls_engine.hpp.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "tls_engine.hpp"

namespace weft {

namespace {

class tls_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "openssl"; }
  [[nodiscard]] std::string message(int code) const override {
    switch (code) {
      case detail::tls_closed_without_notify:
        return "the peer closed the connection without close_notify (the data may be truncated)";
      case detail::tls_unusable:
        return "the TLS stream is unusable after an earlier failure";
      case detail::tls_closed_in_handshake:
        return "the peer closed the connection during the TLS handshake";
      default:
        break;
    }
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(code));
    return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
  }
};

// The verifier's result (X509_V_ERR_*), when the handshake failed in verification.
class tls_verify_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "x509-verify"; }
  [[nodiscard]] std::string message(int code) const override {
    return X509_verify_cert_error_string(code);
  }
};

const std::error_category& verify_category() noexcept {
  static const tls_verify_category category;
  return category;
}

std::string start_of_message(std::string_view operation, std::string_view peer) {
  std::string what("weft: ");
  what.append(operation);
  if (!peer.empty()) what.append(" ").append(peer);
  return what;
}

[[noreturn]] void throw_config_error(const std::string& what) {
  throw detail::make_tls_error(what, {}, nullptr);
}

// Adds every certificate of a PEM text to the context's trust store.
void add_trusted_pem(SSL_CTX* ctx, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);  // takes its own reference
    X509_free(cert);
    ++added;
  }
  ERR_clear_error();  // the read that ended the loop (no more PEM) is not an error
  if (added == 0) throw_config_error("TLS: ca_pem holds no PEM certificate");
}

std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("weft: TLS: bad ALPN name '" + p + "'");
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  return wire;
}

int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_size,
                const unsigned char* offered, unsigned int offered_size, void* arg) {
  const auto* state = static_cast<const detail::tls_context_state*>(arg);
  unsigned char* chosen = nullptr;
  // The server's order of preference wins (SSL_select_next_proto's first list).
  if (SSL_select_next_proto(&chosen, out_size,
                            reinterpret_cast<const unsigned char*>(state->alpn_wire.data()),
                            static_cast<unsigned int>(state->alpn_wire.size()), offered,
                            offered_size) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<detail::tls_context_state> new_state(const SSL_METHOD* method, bool server) {
  auto state = std::make_shared<detail::tls_context_state>();
  state->server = server;
  state->ctx = SSL_CTX_new(method);
  if (state->ctx == nullptr) throw_config_error("TLS: SSL_CTX_new");
  SSL_CTX_set_min_proto_version(state->ctx, TLS1_2_VERSION);
  // Renegotiation would let a read need a write and a write need a read (TLS 1.2 only); weft
  // refuses it, as most servers do.
  SSL_CTX_set_options(state->ctx, SSL_OP_NO_RENEGOTIATION);
  // The engine's record buffers (about 17 KiB each way) are freed while a connection has nothing
  // in flight, as nginx does: an idle keep-alive connection then holds little beyond its state.
  SSL_CTX_set_mode(state->ctx, SSL_MODE_RELEASE_BUFFERS);
  return state;
}

}  // namespace

const std::error_category& tls_category() noexcept {
  static const tls_error_category category;
  return category;
}

namespace detail {

tls_error make_tls_error(std::string_view operation, std::string_view peer, SSL* ssl) {
  const unsigned long first = ERR_get_error();
  ERR_clear_error();
  std::string what = start_of_message(operation, peer);
  if (ssl != nullptr && ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) {
      what.append(": certificate verify failed");
      return tls_error(std::error_code(static_cast<int>(result), verify_category()), what);
    }
  }
  if (first == 0)
    return tls_error(std::error_code(tls_unusable, tls_category()),
                     what + ": the TLS engine failed without a reason");
  // ERR_PACK keeps the library in bits 23..30 and the reason below: it fits an int.
  return tls_error(std::error_code(static_cast<int>(first & 0x7FFFFFFFUL), tls_category()), what);
}

tls_error make_own_tls_error(std::string_view operation, std::string_view peer, tls_own_error code,
                             std::string_view detail) {
  std::string what = start_of_message(operation, peer);
  if (!detail.empty()) what.append(" (").append(detail).append(")");
  return tls_error(std::error_code(code, tls_category()), what);
}

std::string tls_engine::drain_outgoing() {
  std::string out;
  const std::size_t pending = BIO_ctrl_pending(outgoing);
  if (pending == 0) return out;
  out.resize(pending);
  const int n = BIO_read(outgoing, out.data(), static_cast<int>(pending));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

}  // namespace detail

tls_context tls_context::client() { return client(tls_client_options{}); }

tls_context tls_context::client(const tls_client_options& options) {
  auto state = new_state(TLS_client_method(), false);
  SSL_CTX* ctx = state->ctx;
  state->verify = !options.dangerously_skip_verification;
  if (state->verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (options.use_system_store && SSL_CTX_set_default_verify_paths(ctx) != 1)
      throw_config_error("TLS: loading the system CA store");
    if (!options.ca_file.empty() &&
        SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1)
      throw_config_error("TLS: loading CA file " + options.ca_file);
    if (!options.ca_pem.empty()) add_trusted_pem(ctx, options.ca_pem);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!options.alpn.empty()) {
    const std::string wire = alpn_wire(options.alpn);
    // SSL_CTX_set_alpn_protos returns 0 on success (unlike most of OpenSSL).
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0)
      throw_config_error("TLS: setting ALPN protocols");
  }
  return tls_context(std::move(state));
}

tls_context tls_context::server(const tls_server_options& options) {
  auto state = new_state(TLS_server_method(), true);
  SSL_CTX* ctx = state->ctx;
  if (!options.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str()) != 1)
      throw_config_error("TLS: loading certificate file " + options.certificate_file);
  } else if (!options.certificate_pem.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(options.certificate_pem.data(),
                        static_cast<int>(options.certificate_pem.size())),
        &BIO_free);
    X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (leaf == nullptr) throw_config_error("TLS: reading certificate_pem");
    const int used = SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    if (used != 1) throw_config_error("TLS: using certificate_pem");
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
      SSL_CTX_add_extra_chain_cert(ctx, extra);  // takes ownership
    ERR_clear_error();
  } else {
    throw std::invalid_argument(
        "weft: tls_context::server needs certificate_file or certificate_pem");
  }
  if (!options.key_file.empty()) {
    if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      throw_config_error("TLS: loading key file " + options.key_file);
  } else if (!options.key_pem.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(options.key_pem.data(), static_cast<int>(options.key_pem.size())),
        &BIO_free);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) throw_config_error("TLS: reading key_pem");
    const int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1) throw_config_error("TLS: using key_pem");
  } else {
    throw std::invalid_argument("weft: tls_context::server needs key_file or key_pem");
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw_config_error("TLS: the private key does not match the certificate");
  if (!options.alpn.empty()) {
    state->alpn_wire = alpn_wire(options.alpn);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, state.get());  // state outlives ctx's use
  }
  return tls_context(std::move(state));
}

bool tls_context::is_server() const noexcept { return state_ != nullptr && state_->server; }

}  // namespace weft
