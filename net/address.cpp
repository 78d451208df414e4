// net/address.cpp: weft::socket_address: numeric parsing and printing of IPv4, IPv6 and Unix
// addresses.
#include <weft/net/address.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <stdexcept>

namespace weft {

socket_address::socket_address() noexcept : storage_{}, size_(0) { storage_.ss_family = AF_UNSPEC; }

socket_address::socket_address(const sockaddr* address, socklen_t size) noexcept
    : storage_{}, size_(size > capacity ? capacity : size) {
  std::memcpy(&storage_, address, size_);
}

std::optional<socket_address> socket_address::parse(std::string_view host, std::uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN + IF_NAMESIZE) return std::nullopt;
  std::string text(host);
  socket_address result;
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return socket_address(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  std::string scope;
  if (const auto percent = text.find('%'); percent != std::string::npos) {
    scope = text.substr(percent + 1);
    text.resize(percent);
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    if (!scope.empty()) {
      v6.sin6_scope_id = ::if_nametoindex(scope.c_str());
      if (v6.sin6_scope_id == 0) return std::nullopt;
    }
    return socket_address(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
  }
  return std::nullopt;
}

socket_address socket_address::unix_path(std::string_view path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof un.sun_path) {
    throw std::invalid_argument("weft: a Unix socket path must have 1 to " +
                                std::to_string(sizeof un.sun_path - 1) + " characters: '" +
                                std::string(path) + "'");
  }
  std::memcpy(un.sun_path, path.data(), path.size());
  socklen_t size = 0;
  if (path.front() == '@') {
    un.sun_path[0] = '\0';  // abstract: the name is the bytes after the NUL, not NUL-terminated
    size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return socket_address(reinterpret_cast<const sockaddr*>(&un), size);
}

int socket_address::family() const noexcept { return storage_.ss_family; }

std::uint16_t socket_address::port() const noexcept {
  switch (storage_.ss_family) {
    case AF_INET:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

std::string socket_address::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (storage_.ss_family) {
    case AF_INET:
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                  sizeof text);
      return text;
    case AF_INET6:
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text,
                  sizeof text);
      return text;
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      const auto offset = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
      if (size_ <= offset) return "(unnamed)";
      const std::size_t length = size_ - offset;
      if (un->sun_path[0] == '\0') {
        std::string name(1, '@');
        name.append(un->sun_path + 1, length - 1);
        return name;
      }
      return std::string(un->sun_path, ::strnlen(un->sun_path, length));
    }
    default:
      return "(no address)";
  }
}

std::string socket_address::to_string() const {
  switch (storage_.ss_family) {
    case AF_INET:
      return host().append(":").append(std::to_string(port()));
    case AF_INET6: {
      std::string text(1, '[');
      return text.append(host()).append("]:").append(std::to_string(port()));
    }
    default:
      return host();
  }
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

}  // namespace weft
