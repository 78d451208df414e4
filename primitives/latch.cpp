// primitives/latch.cpp: weft::latch's count_down (the semantics are in
// <weft/primitives/latch.hpp>).
#include <weft/primitives/latch.hpp>

#include <stdexcept>
#include <string>

namespace weft {

void latch::count_down(std::ptrdiff_t n) {
  if (n < 0) throw std::invalid_argument("weft::latch::count_down: a negative decrement");
  std::ptrdiff_t current = count_.load(std::memory_order_relaxed);
  do {
    if (n > current) {
      throw std::logic_error("weft::latch::count_down(" + std::to_string(n) +
                             ") would go below zero (count " + std::to_string(current) + ")");
    }
    // Ordering: acq_rel, so the task whose decrement reaches zero (and sets the event) sees
    // every other decrementer's writes; the event publishes them to the waiters.
  } while (!count_.compare_exchange_weak(current, current - n, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  if (current == n && n > 0) open_.set();
}

}  // namespace weft
