// net/http_date.cpp: the Date header's value, cached per thread and per second.
#include "http_date.hpp"

#include <time.h>

namespace weft::http::detail {

namespace {

constexpr std::size_t date_size = 29;

void two_digits(char* out, int value) noexcept {
  out[0] = static_cast<char>('0' + value / 10);
  out[1] = static_cast<char>('0' + value % 10);
}

}  // namespace

void format_http_date(std::time_t t, char* out) noexcept {
  static constexpr char days[] = "SunMonTueWedThuFriSat";
  static constexpr char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  // Fixed positions: "Www, DD Mmm YYYY HH:MM:SS GMT" (no locale involved, unlike strftime).
  char* p = out;
  for (int i = 0; i < 3; ++i)
    *p++ = days[tm.tm_wday * 3 + i];
  *p++ = ',';
  *p++ = ' ';
  two_digits(p, tm.tm_mday);
  p += 2;
  *p++ = ' ';
  for (int i = 0; i < 3; ++i)
    *p++ = months[tm.tm_mon * 3 + i];
  *p++ = ' ';
  const int year = tm.tm_year + 1900;
  two_digits(p, year / 100 % 100);
  two_digits(p + 2, year % 100);
  p += 4;
  *p++ = ' ';
  two_digits(p, tm.tm_hour);
  p[2] = ':';
  two_digits(p + 3, tm.tm_min);
  p[5] = ':';
  two_digits(p + 6, tm.tm_sec);
  p += 8;
  *p++ = ' ';
  *p++ = 'G';
  *p++ = 'M';
  *p++ = 'T';
}

std::string_view http_date_now() noexcept {
  // Per thread, so no synchronisation: each worker keeps its own copy of the current second.
  struct cache {
    std::time_t second = -1;
    char text[date_size];
  };
  thread_local cache c;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);  // ticks at least every few ms: enough for seconds
  if (ts.tv_sec != c.second) {
    format_http_date(ts.tv_sec, c.text);
    c.second = ts.tv_sec;
  }
  return {c.text, date_size};
}

}  // namespace weft::http::detail
