// scheduler/worker_identity.hpp: which runtime a worker serves, and its index there.
//
// All that the parts below the worker need to know of one: the trace recorder (trace.cpp) files a
// task's events in the buffer of the worker it ran on, if that worker is one of its runtime's. A
// worker is a worker_identity (worker.hpp), so such a part takes a `const worker_identity*` and
// never sees the worker's layout, which would make it stand above the worker it is called from.
#pragma once

#include <cstddef>

namespace weft::detail {

class runtime_core;

class worker_identity {
 public:
  worker_identity(runtime_core& runtime, std::size_t index) noexcept
      : runtime_(runtime), index_(index) {}

  // The runtime (an identity here: compared, not reached through).
  [[nodiscard]] runtime_core& runtime() const noexcept { return runtime_; }
  [[nodiscard]] std::size_t index() const noexcept { return index_; }

 private:
  runtime_core& runtime_;
  const std::size_t index_;
};

}  // namespace weft::detail
