// weft/net/address.hpp: weft::socket_address, an IPv4, IPv6 or Unix socket address.
//
//   auto a = weft::socket_address::parse("127.0.0.1", 8080);    // numeric only: no lookup
//   auto b = weft::socket_address::parse("::1", 8080);
//   auto c = weft::socket_address::unix_path("/run/app.sock");
//   auto d = weft::socket_address::unix_path("@weft-test");       // '@': Linux abstract name
//   std::string text = a->to_string();                          // "127.0.0.1:8080", "[::1]:8080"
//
// A value type (a sockaddr_storage and its length). Names that need a lookup go through
// weft::resolve (dns.hpp); parse() only reads numeric addresses.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <weft/scheduler/export.hpp>

namespace weft {

class WEFT_API socket_address {
 public:
  socket_address() noexcept;
  // Copies `size` bytes of `address` (at most sizeof(sockaddr_storage)).
  socket_address(const sockaddr* address, socklen_t size) noexcept;

  // A numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "[::1]", "fe80::1%lo") address, or nullopt.
  static std::optional<socket_address> parse(std::string_view host, std::uint16_t port);
  // A Unix socket path; a leading '@' names an abstract socket (Linux), which has no file.
  // std::invalid_argument if the path does not fit in sockaddr_un.
  static socket_address unix_path(std::string_view path);

  // AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC for a default-constructed address.
  [[nodiscard]] int family() const noexcept;
  // The port (0 for Unix addresses).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // The address without the port ("127.0.0.1", "::1"), or the Unix path ("@name" if abstract).
  [[nodiscard]] std::string host() const;
  // "127.0.0.1:80", "[::1]:80", "/run/app.sock", "@name".
  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] const sockaddr* data() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  [[nodiscard]] socklen_t size() const noexcept { return size_; }
  // For accept/recvfrom/getsockname, which fill data() and report the length.
  void set_size(socklen_t size) noexcept { size_ = size; }
  static constexpr socklen_t capacity = sizeof(sockaddr_storage);

  friend WEFT_API bool operator==(const socket_address& a, const socket_address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t size_;
};

}  // namespace weft
