// tests/support/stress.hpp: how big the stress tests are.
//
// WEFT_STRESS_SCALE chooses the sizes:
//   unset or "small"  the default: small counts, so the whole suite stays fast under TSan and ASan
//                     on a 2-core CI machine;
//   "full"            the figures of docs/design reliability.md (S1-S5);
//   a number f        f times the full figure (e.g. 0.1), never less than the small count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "support/watchdog.hpp"

namespace weft_test {

inline bool sanitized() {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// `small` in the default run, `full` with WEFT_STRESS_SCALE=full.
inline std::size_t stress_count(std::size_t small, std::size_t full) {
  const char* env = std::getenv("WEFT_STRESS_SCALE");
  if (env == nullptr || *env == '\0' || std::string(env) == "small") return small;
  if (std::string(env) == "full") return full;
  char* end = nullptr;
  const double factor = std::strtod(env, &end);
  if (end == env || factor <= 0) return small;
  const auto scaled = static_cast<std::size_t>(static_cast<double>(full) * factor);
  return std::max(small, std::min(full, scaled));
}

// True when WEFT_STRESS_SCALE asks for more than the default sizes.
inline bool stress_scaled_up() {
  const char* env = std::getenv("WEFT_STRESS_SCALE");
  return env != nullptr && *env != '\0' && std::string(env) != "small";
}

// Prints `line` on stderr, after the running test's name, when the sizes were scaled up: the
// figures of a full run are recorded from it (doctest's MESSAGE shows only with -s).
inline void stress_summary(const std::string& line) {
  if (!stress_scaled_up()) return;
  std::fprintf(stderr, "[stress] %s: %s\n", current_test_name().c_str(), line.c_str());
  std::fflush(stderr);
}

}  // namespace weft_test
