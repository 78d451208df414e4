// tests/support/tracker.hpp: counts live objects, to prove that frames were destroyed (no leak) or
// kept alive (no dangling), independently of LeakSanitizer.
#pragma once

#include <atomic>

namespace weft_test {

struct tracker {
  static inline std::atomic<int> live{0};
  tracker() noexcept { live.fetch_add(1); }
  tracker(const tracker&) noexcept { live.fetch_add(1); }
  tracker& operator=(const tracker&) noexcept = default;
  ~tracker() { live.fetch_sub(1); }
};

}  // namespace weft_test
