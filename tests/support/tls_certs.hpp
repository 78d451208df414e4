// tests/support/tls_certs.hpp: a throwaway certificate authority and server certificates made at
// test time with OpenSSL (EC P-256, quick to generate), as PEM text.
//
//   auto ca = weft_test::make_ca("weft test CA");
//   auto leaf = weft_test::issue(ca, "localhost", {"DNS:localhost", "IP:127.0.0.1"});
//   tls_context::server({.certificate_pem = leaf.certificate_pem, .key_pem = leaf.key_pem});
//   tls_context::client({.use_system_store = false, .ca_pem = ca.certificate_pem});
#pragma once

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

namespace weft_test {

struct credentials {
  std::string certificate_pem;
  std::string key_pem;
  std::shared_ptr<EVP_PKEY> key;  // to sign with (a CA)
  std::shared_ptr<X509> certificate;
};

namespace detail {

inline std::string pem_of(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_X509(bio.get(), cert) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

inline std::string pem_of(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

inline void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

inline credentials make(const std::string& common_name, const credentials* issuer,
                        const std::vector<std::string>& alt_names) {
  std::shared_ptr<EVP_PKEY> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  REQUIRE(key != nullptr);
  std::shared_ptr<X509> cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* issuer_cert = issuer != nullptr ? issuer->certificate.get() : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));
  if (issuer == nullptr) {
    add_extension(cert.get(), issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  } else {
    add_extension(cert.get(), issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), issuer_cert, NID_ext_key_usage, "serverAuth");
    std::string alt;
    for (const std::string& a : alt_names)
      alt.append(alt.empty() ? "" : ",").append(a);
    if (!alt.empty()) add_extension(cert.get(), issuer_cert, NID_subject_alt_name, alt);
  }
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : key.get();
  REQUIRE(X509_sign(cert.get(), signer, EVP_sha256()) > 0);
  return {pem_of(cert.get()), pem_of(key.get()), key, cert};
}

}  // namespace detail

// A self-signed CA certificate and its key.
inline credentials make_ca(const std::string& common_name) {
  return detail::make(common_name, nullptr, {});
}

// A server certificate signed by `ca`, for the subject alternative names `alt_names`
// ("DNS:localhost", "IP:127.0.0.1").
inline credentials issue(const credentials& ca, const std::string& common_name,
                         const std::vector<std::string>& alt_names) {
  return detail::make(common_name, &ca, alt_names);
}

}  // namespace weft_test
