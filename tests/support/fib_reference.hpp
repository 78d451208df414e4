// tests/support/fib_reference.hpp: the n-th Fibonacci number by a plain loop, the answer the
// fork-join tests check their task trees against.
#pragma once

#include <cstdint>

namespace weft_test {

inline std::uint64_t fib_reference(int n) {
  std::uint64_t a = 0, b = 1;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

}  // namespace weft_test
