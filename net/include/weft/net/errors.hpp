// weft/net/errors.hpp: the exceptions of weft's networking, one family rooted at weft::net_error.
//
//   try {
//     auto stream = co_await weft::tcp_stream::connect("127.0.0.1", 8080);
//   } catch (const weft::connection_refused& e) {   // nobody listens there
//   } catch (const weft::net_error& e) {            // any other failure; e.code() is the errno
//   } catch (const weft::timeout_error& e) {        // the connect timeout (weft's own timeout
//   type)
//   }
//
// Every net_error is a std::system_error: code() carries the system error (or, for
// host_not_found, c-ares' status in weft::dns_category()), and what() names the operation, the
// address and the reason: "weft: connect to 127.0.0.1:9: Connection refused". Timeouts are not
// net_errors: they are weft::timeout_error, the type every weft timeout throws.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include <weft/scheduler/export.hpp>

namespace weft {

class WEFT_API net_error : public std::system_error {
 public:
  net_error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
};

// ECONNREFUSED: nothing listens at the address (or a UDP peer answered "port unreachable").
class WEFT_API connection_refused : public net_error {
 public:
  using net_error::net_error;
};

// ECONNRESET (also ECONNABORTED): the peer reset the connection.
class WEFT_API connection_reset : public net_error {
 public:
  using net_error::net_error;
};

// EPIPE: a write after the peer (or this side) closed the connection. Never a SIGPIPE: weft sends
// with MSG_NOSIGNAL.
class WEFT_API broken_pipe : public net_error {
 public:
  using net_error::net_error;
};

// EADDRINUSE: bind to an address that another socket holds.
class WEFT_API address_in_use : public net_error {
 public:
  using net_error::net_error;
};

// A name that does not resolve. code() is c-ares' status in dns_category() and what() carries
// c-ares' reason: "weft: resolve nosuch.example: Domain name not found".
class WEFT_API host_not_found : public net_error {
 public:
  using net_error::net_error;
};

// The error category of c-ares statuses (ARES_ENOTFOUND, ARES_ETIMEOUT, ...).
WEFT_API const std::error_category& dns_category() noexcept;

namespace detail {
// Throws the net_error subclass that matches `error` (an errno value), with the message
// "weft: <operation> <address>: <strerror>" (`address` may be empty).
[[noreturn]] WEFT_API void throw_net_error(int error, std::string_view operation,
                                           std::string_view address);
}  // namespace detail

}  // namespace weft
