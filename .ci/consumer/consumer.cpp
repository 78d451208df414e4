// A first weft program, built against an installed weft: gather two tasks, check the result.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

weft::task<int> twice(int x) {
  co_await weft::sleep(10ms);
  co_return 2 * x;
}

weft::task<int> async_main() {
  auto [a, b] = co_await weft::gather(twice(1), twice(20));
  co_return a + b;
}

int main() {
  const int result = weft::run(async_main());
  std::printf("consumer: weft::run returned %d\n", result);
  return result == 42 ? 0 : 1;
}
