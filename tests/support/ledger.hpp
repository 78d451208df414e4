// tests/support/ledger.hpp: exactly-once bookkeeping for the stress tests of weft::queue and
// weft::channel. Items are the ints 0..n-1; each is put at most once, and every put and every
// take is recorded, so that a tally after the run finds items lost, duplicated or made up.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

namespace weft_test {

class ledger {
 public:
  explicit ledger(std::size_t n) : sent_(n), received_(n) {}

  std::size_t size() const noexcept { return sent_.size(); }
  // Item i was put (call once the put returned).
  void sent(int i) noexcept { sent_[static_cast<std::size_t>(i)] = 1; }
  // Item i came out (call before any cancellation point that could drop it).
  void received(int i) noexcept { ++received_[static_cast<std::size_t>(i)]; }

  struct tally {
    std::size_t sent = 0;        // items put
    std::size_t received = 0;    // items taken, duplicates included
    std::size_t lost = 0;        // put and never taken
    std::size_t duplicated = 0;  // taken more than once
    std::size_t phantom = 0;     // taken and never put
  };
  // Requires: every producer and consumer has finished.
  [[nodiscard]] tally count() const {
    tally t;
    for (std::size_t i = 0; i < sent_.size(); ++i) {
      const int s = sent_[i].load(), r = received_[i].load();
      t.sent += static_cast<std::size_t>(s);
      t.received += static_cast<std::size_t>(r);
      if (s == 1 && r == 0) ++t.lost;
      if (r > 1) ++t.duplicated;
      if (s == 0 && r > 0) ++t.phantom;
    }
    return t;
  }

 private:
  std::vector<std::atomic<int>> sent_;
  std::vector<std::atomic<int>> received_;
};

}  // namespace weft_test
