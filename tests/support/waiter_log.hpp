// tests/support/waiter_log.hpp: the order in which waiters of a primitive got through.
//
// A test spawns waiters that count themselves in `entered` before they wait and append their id
// to `order` once through; `until_entered(s, k)` yields until k of them have counted themselves.
// On a one-worker runtime a spawned task runs until it suspends, so after until_entered(s, k)
// the k-th waiter is queued: tests build a known queue order that way.
#pragma once

#include <atomic>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

struct waiter_log {
  std::atomic<int> entered{0};
  std::vector<int> order;  // appended by waiters once through (serialized by the primitive or
                           // by the single worker)
};

inline weft::task<> until_entered(waiter_log& s, int k) {
  while (s.entered.load() < k)
    co_await weft::yield_now();
}

}  // namespace weft_test
