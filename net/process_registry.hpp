// net/process_registry.hpp: looking up the functions registered with WEFT_PROCESS_FUNCTION (the
// table lives in process_codec.cpp, filled during static initialization).
#pragma once

#include <string_view>

#include <weft/net/process_pool.hpp>

namespace weft::detail {

struct lookup_result {
  const process_function_base* function;  // null if absent or registered twice
  bool registered_twice;
};

lookup_result find_process_function(std::string_view name);

}  // namespace weft::detail
