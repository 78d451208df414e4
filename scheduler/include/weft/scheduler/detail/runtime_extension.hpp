// weft/scheduler/detail/runtime_extension.hpp: state a layer above attaches to one runtime.
//
//   struct my_state final : weft::detail::runtime_extension { ... };
//   static char key;
//   auto& state = static_cast<my_state&>(weft::detail::runtime_extension_of(
//       rt, &key, [](weft::detail::runtime_core* rt) -> weft::detail::runtime_extension* {
//         return new my_state(rt);
//       }));
//
// The net layer keeps its io_uring ring this way (net/file_uring.cpp): one per runtime, created
// on first use, gone with the runtime. The scheduler knows nothing of what an extension holds.
//
// Invariants:
//   - at most one extension per (runtime, key); `make` runs at most once per pair, on the thread
//     that asked first, under the runtime's extension lock (so `make` must not ask for another
//     extension of the same runtime);
//   - shutdown destroys the extensions in reverse order of creation, after its threads have
//     stopped and every task still pending was cancelled and destroyed (so no awaiter refers to
//     one any more), and before the poller forgets its registrations (an io_source an extension
//     owns deregisters as usual). Nothing asks for an extension after that: no thread runs.
#pragma once

#include <weft/scheduler/export.hpp>

namespace weft::detail {

class runtime_core;

class WEFT_API runtime_extension {
 public:
  runtime_extension() = default;
  virtual ~runtime_extension();
  runtime_extension(const runtime_extension&) = delete;
  runtime_extension& operator=(const runtime_extension&) = delete;
};

// The extension of `rt` under `key`, made by `make(rt)` on first use. `make` may throw; then
// nothing is stored and the next call tries again.
WEFT_API runtime_extension& runtime_extension_of(runtime_core* rt, const void* key,
                                                 runtime_extension* (*make)(runtime_core* rt));

}  // namespace weft::detail
