// tests/support/eventually.hpp: waiting on a test's own thread for something another thread (a
// worker, the poller, a TBB thread) will make true soon.
//
//   REQUIRE(weft_test::eventually([&] { return started == 1; }));        // up to 10 s
//   CHECK(weft_test::eventually([&] { return e.started.load(); }, 5s, 200us));
//
// The limit is generous on purpose: it only bounds a test that is failing anyway, and a loaded CI
// machine (sanitizers, two cores) may take seconds for what takes microseconds on a quiet one. A
// test that needs a tight bound states its own, and says why.
#pragma once

#include <chrono>
#include <thread>

namespace weft_test {

// Polls `done` every `poll` until it returns true (true) or `limit` has passed (false; `done` is
// asked once more at the end, so a condition that became true at the last moment still counts).
template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds limit = std::chrono::seconds(10),
                std::chrono::microseconds poll = std::chrono::milliseconds(1)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace weft_test
