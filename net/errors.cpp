// net/errors.cpp: the errno -> exception mapping of weft's networking, and c-ares' error category.
#include <weft/net/errors.hpp>

#include <ares.h>

#include <cerrno>
#include <string>

namespace weft {

namespace {

class dns_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "c-ares"; }
  [[nodiscard]] std::string message(int status) const override { return ares_strerror(status); }
};

}  // namespace

const std::error_category& dns_category() noexcept {
  static const dns_error_category category;
  return category;
}

namespace detail {

void throw_net_error(int error, std::string_view operation, std::string_view address) {
  std::string what;
  what.reserve(8 + operation.size() + address.size());
  what.append("weft: ").append(operation);
  if (!address.empty()) what.append(" ").append(address);
  const std::error_code code(error, std::system_category());
  switch (error) {
    case ECONNREFUSED:
      throw connection_refused(code, what);
    case ECONNRESET:
    case ECONNABORTED:
      throw connection_reset(code, what);
    case EPIPE:
      throw broken_pipe(code, what);
    case EADDRINUSE:
      throw address_in_use(code, what);
    default:
      throw net_error(code, what);
  }
}

}  // namespace detail

}  // namespace weft
