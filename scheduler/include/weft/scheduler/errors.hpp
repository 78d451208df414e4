// weft/scheduler/errors.hpp: the exceptions the scheduler throws.
#pragma once

#include <stdexcept>

#include <weft/scheduler/export.hpp>

namespace weft {

// Thrown when work is submitted to a runtime that is shutting down, and when a join_handle is
// awaited whose task was abandoned because its runtime shut down before the task finished.
class WEFT_API runtime_stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace weft
