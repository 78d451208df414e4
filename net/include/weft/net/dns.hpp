// weft/net/dns.hpp: weft::resolve, asynchronous name lookup on c-ares.
//
//   std::vector<weft::socket_address> addresses = co_await weft::resolve("example.com", 443);
//
// A numeric host ("127.0.0.1", "::1") is parsed without a lookup. Other names go to c-ares, whose
// sockets are driven by the runtime's poller (the lookup holds no thread while it waits): the
// hosts file first (/etc/hosts; with CARES_HOSTS set in the environment, that file instead),
// then DNS as /etc/resolv.conf says (or `servers`). A name that does not resolve throws
// host_not_found with c-ares' reason; `timeout` bounds the whole lookup (weft::timeout_error).
// A cancellation point: cancelling the lookup abandons it and closes its sockets.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/errors.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct resolve_options {
  // AF_UNSPEC (both), AF_INET or AF_INET6.
  int family = AF_UNSPEC;
  // The whole lookup (weft::timeout_error when it passes).
  std::chrono::milliseconds timeout{10000};
  // DNS servers to ask instead of /etc/resolv.conf's, as c-ares' "host[:port],..." list
  // ("127.0.0.1:5353"); null: the system's. The string must outlive the lookup. (A pointer, not a
  // std::string, keeps the options trivially destructible: GCC 12 destroys a defaulted argument
  // with a non-trivial destructor twice when the call is an operand of co_await.)
  const char* servers = nullptr;
};

// The addresses of `host` with `port`, in the resolver's order (as getaddrinfo sorts them), one
// per address (stream sockets). Never empty: no address is host_not_found.
WEFT_API task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                                   resolve_options options = {});

}  // namespace weft
