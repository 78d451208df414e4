// weft/scheduler/testing.hpp: weft::testing::explore, a test body run under many seeds of the
// deterministic mode (runtime_options::deterministic_seed), to find a race in user code and then
// replay it.
//
//   TEST_CASE("two withdrawals never overdraw the account") {
//     weft::testing::explore(1000, []() -> weft::task<> {
//       account acc{100};
//       co_await weft::gather(acc.withdraw(80), acc.withdraw(80));
//       if (acc.balance < 0) throw std::runtime_error("overdrawn");
//     });
//   }
//
// Each seed gets a fresh deterministic runtime (one worker, virtual time, every scheduling choice
// from the seed) on which `body()` runs to completion, as weft::run runs a main task. The first
// seed whose body throws stops the exploration with weft::testing::seed_failure, whose message
// names the seed and how to replay it:
//
//   weft::testing::explore: seed 137 (of 0..999) failed: overdrawn; replay it with WEFT_SEED=137
//
// With WEFT_SEED set, explore runs that one seed only (and every deterministic runtime uses it),
// so the failing schedule comes back under a debugger, in a log, or with more assertions.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/scheduler/runtime.hpp>

namespace weft::testing {

// Seeds first, first + 1, ..., first + count - 1. explore(1000, body) runs seeds 0 to 999.
struct seed_range {
  seed_range(std::uint64_t count_) : count(count_) {}  // NOLINT: a count reads naturally
  seed_range(std::uint64_t first_, std::uint64_t count_) : first(first_), count(count_) {}
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};

// The body failed under `seed`; what() names the seed and the replay.
class seed_failure : public std::runtime_error {
 public:
  seed_failure(std::uint64_t seed, const std::string& message)
      : std::runtime_error(message), seed_(seed) {}
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

 private:
  std::uint64_t seed_;
};

namespace detail {
inline std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// WEFT_SEED, if set and valid (the runtime itself rejects an invalid one with a clear error).
inline std::optional<std::uint64_t> replay_seed() {
  const char* env = std::getenv("WEFT_SEED");
  if (env == nullptr || *env == '\0' || *env == '-') return std::nullopt;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(env, &end, 0);
  if (*end != '\0') return std::nullopt;
  return value;
}
}  // namespace detail

// Runs `body()` (a callable returning a weft::task, or an awaitable that block_on accepts) on a
// fresh deterministic runtime for each seed of `seeds`, with `options` for everything else
// (its deterministic_seed is set per seed). Returns the number of seeds run. Throws seed_failure
// for the first seed whose body throws (or whose runtime cannot start); the exception that the
// body threw is its nested exception (std::rethrow_if_nested).
template <class Body>
std::uint64_t explore(seed_range seeds, Body body, runtime_options options = {}) {
  std::uint64_t first = seeds.first;
  std::uint64_t count = seeds.count;
  const auto replay = detail::replay_seed();
  if (replay) {
    first = *replay;
    count = 1;
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t seed = first + i;
    options.deterministic_seed = seed;
    try {
      runtime rt(options);
      rt.block_on(body());
    } catch (...) {
      const std::string range = replay ? std::string("WEFT_SEED")
                                       : std::to_string(seeds.first) + ".." +
                                             std::to_string(seeds.first + seeds.count - 1);
      const std::string message = "weft::testing::explore: seed " + std::to_string(seed) + " (of " +
                                  range + ") failed: " + detail::describe_current_exception() +
                                  "; replay it with WEFT_SEED=" + std::to_string(seed);
      std::throw_with_nested(seed_failure(seed, message));
    }
  }
  return count;
}

}  // namespace weft::testing
