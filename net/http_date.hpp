// net/http_date.hpp: the value of the Date header (RFC 9110 IMF-fixdate, "Sun, 06 Nov 1994
// 08:49:37 GMT"), formatted at most once per second per thread: a response reads the coarse
// real-time clock (a vDSO call, no system call) and reuses the text while the second is the same.
#pragma once

#include <ctime>
#include <string_view>

namespace weft::http::detail {

// Formats `t` (seconds since the epoch, UTC) into `out` (29 bytes, no terminator).
void format_http_date(std::time_t t, char* out) noexcept;

// Now, as a Date value. The view is this thread's cache: valid until the next call on the same
// thread (copy it before any co_await).
std::string_view http_date_now() noexcept;

}  // namespace weft::http::detail
