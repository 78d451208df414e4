// scheduler/runtime_extension.cpp: per-runtime state of the layers above
// (detail/runtime_extension.hpp).
#include <weft/scheduler/detail/runtime_extension.hpp>

#include <memory>
#include <mutex>
#include <utility>

#include "runtime_core.hpp"

namespace weft::detail {

runtime_extension::~runtime_extension() = default;

runtime_extension& runtime_extension_of(runtime_core* rt, const void* key,
                                        runtime_extension* (*make)(runtime_core* rt)) {
  std::lock_guard lock(rt->extensions_mutex);
  for (auto& [k, extension] : rt->extensions) {
    if (k == key) return *extension;
  }
  std::unique_ptr<runtime_extension> made(make(rt));
  rt->extensions.emplace_back(key, std::move(made));
  return *rt->extensions.back().second;
}

void runtime_core::destroy_extensions() noexcept {
  std::vector<std::pair<const void*, std::unique_ptr<runtime_extension>>> all;
  {
    std::lock_guard lock(extensions_mutex);
    all.swap(extensions);
  }
  while (!all.empty())
    all.pop_back();  // newest first: a later extension may use an earlier one
}

}  // namespace weft::detail
