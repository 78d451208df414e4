// tests/support/captured_log.hpp: the lines a runtime reports through its log hook
// (runtime_options::log), kept for a test to look for.
//
//   auto log = std::make_shared<weft_test::captured_log>();
//   opts.log = log->hook();
//   ...
//   CHECK(log->count("still running after") == 1);
//
// The hook may be called from any of the runtime's threads (workers, the poller, the blocking
// pool, TBB's threads), and also while the runtime is being destroyed, so the lines are kept under
// a mutex; hold the capture in a shared_ptr when the hook may outlive the test's scope.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace weft_test {

struct captured_log {
  std::mutex mutex;
  std::vector<std::string> lines;

  // A hook for runtime_options::log that appends to `lines`. The capture must outlive every call.
  std::function<void(std::string_view)> hook() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    };
  }

  // How many lines contain `needle`.
  std::size_t count(std::string_view needle) {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& line : lines)
      n += line.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
};

}  // namespace weft_test
