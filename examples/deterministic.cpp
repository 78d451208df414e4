// examples/deterministic.cpp: a race found by exploring seeds, then replayed from its seed
// (runtime_options::deterministic_seed, weft::testing::explore). Docs: docs/embedding.md.
//
// Two customers withdraw from one bank account. The unsafe withdraw reads the balance, awaits
// (an audit call; a yield_now stands for it), and then writes: if the scheduler runs the other
// withdrawal in between, both see enough money and the account is overdrawn. A deterministic
// runtime draws every scheduling choice from a seed, so explore() tries seeds until one breaks
// the invariant and names it; the same seed then fails again, every time, and the fixed withdraw
// (a weft::mutex around read-audit-write) passes every seed.
//
//   Python (no built-in equivalent)                 weft
//   random.seed(s); run the loop with a             runtime_options o; o.deterministic_seed = s;
//   shuffled ready queue (a custom loop)            weft::runtime rt(o); rt.block_on(main());
//   for s in range(n): try_seed(s)                  weft::testing::explore(n, main);
//
// The program exits non-zero if no seed finds the race, if the replay does not fail the same way,
// or if the fixed version fails under any seed.

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <weft/scheduler/testing.hpp>
#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::deterministic {

namespace {

using examples::check;

struct account {
  int balance = 100;
  weft::mutex lock;
};

weft::task<void> withdraw_unsafe(account& acc, int amount) {
  if (acc.balance >= amount) {
    co_await weft::yield_now();  // the audit call: other tasks may run meanwhile
    acc.balance -= amount;
  }
}

weft::task<void> withdraw_safe(account& acc, int amount) {
  auto held = co_await acc.lock.lock();
  if (acc.balance >= amount) {
    co_await weft::yield_now();
    acc.balance -= amount;
  }
}

template <auto Withdraw>
weft::task<void> two_customers() {
  account acc;
  co_await weft::gather(Withdraw(acc, 80), Withdraw(acc, 80));
  if (acc.balance < 0) throw std::runtime_error("overdrawn: " + std::to_string(acc.balance));
}

}  // namespace

int run() {
  // 1. Explore: seeds 0..199 until one overdraws.
  std::uint64_t failing = 0;
  bool found = false;
  try {
    weft::testing::explore(200, two_customers<withdraw_unsafe>);
  } catch (const weft::testing::seed_failure& failure) {
    std::printf("%s\n", failure.what());
    failing = failure.seed();
    found = true;
  }
  if (!check(found, "some seed of 0..199 finds the overdraft")) return 1;

  // 2. Replay: the same seed fails the same way, every time.
  for (int attempt = 0; attempt < 3; ++attempt) {
    weft::runtime_options options;
    options.deterministic_seed = failing;
    weft::runtime rt(options);
    try {
      rt.block_on(two_customers<withdraw_unsafe>());
      check(false, "the replay of the failing seed fails again");
      return 1;
    } catch (const std::runtime_error& e) {
      std::printf("replay %d of seed %llu: %s\n", attempt + 1,
                  static_cast<unsigned long long>(failing), e.what());
    }
  }

  // 3. The fix holds under every seed.
  const auto seeds = weft::testing::explore(200, two_customers<withdraw_safe>);
  std::printf("withdraw_safe passed %llu seeds\n", static_cast<unsigned long long>(seeds));
  return 0;
}

}  // namespace examples::deterministic

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::deterministic::run(); }
#endif
