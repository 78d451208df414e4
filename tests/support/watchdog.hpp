// tests/support/watchdog.hpp: turns a hang into a failure that names the test (reliability rule 6).
//
//   TEST_CASE("sleep: ...") {
//     weft_test::watchdog dog(10s);   // aborts the process with a message after 10 s
//     ...
//   }
//
// A hung test would otherwise sit until CTest's TIMEOUT kills it, with no hint of where it stopped.
// The watchdog is a thread that waits for its own destruction; if that does not come in time it
// prints the name of the running test case and aborts (abort, not a doctest failure: the test's
// own thread is stuck and cannot be unwound).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace weft_test {

// The name of the test case that is running (kept by a doctest listener in main.cpp).
std::string current_test_name();

class watchdog {
 public:
  explicit watchdog(std::chrono::milliseconds limit, std::string what = {})
      : name_(current_test_name()), what_(std::move(what)), limit_(limit) {
    thread_ = std::thread([this] { watch(); });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    if (cv_.wait_for(lock, limit_, [this] { return finished_; })) return;
    std::fprintf(stderr,
                 "\nweft test watchdog: test case \"%s\" did not finish within %lld ms%s%s; "
                 "aborting\n",
                 name_.c_str(), static_cast<long long>(limit_.count()),
                 what_.empty() ? "" : " while ", what_.c_str());
    std::fflush(stderr);
    std::abort();
  }

  std::string name_;
  std::string what_;
  std::chrono::milliseconds limit_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace weft_test
