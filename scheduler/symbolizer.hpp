// scheduler/symbolizer.hpp: names a code address, for runtime::dump's await chains.
//
// A coroutine's resume function (GCC's "f(...) [clone .actor]", Clang's "f(...) (.resume)") is a
// local symbol: dladdr, which sees only the dynamic symbol table, cannot name it. So the
// symbolizer reads the module's own ELF symbol table (.symtab) from its file, once per module,
// and finds the function whose range holds the address; dladdr still says which module and where
// it is loaded. A stripped module falls back to dladdr's nearest exported symbol, then to
// "<module>+0x<offset>". Slow (the first call per module reads its file), never on a hot path.
#pragma once

#include <string>

namespace weft::detail {

// The demangled name of the function holding `address` ("ns::fetch_all(int) [clone .actor]"),
// or "<module>+0x<offset>". Thread-safe.
std::string symbolize(const void* address);

// Where the function holding `address` is defined, "file:line", from the module's DWARF line
// table through GCC's libbacktrace (libgcc-12-dev, which g++ itself needs; clang's builds use the
// same copy): the line of `address` itself, which for a coroutine's resume function is its first
// line. "" if the module has no line table (built without -g, or stripped) or weft was built
// without libbacktrace. The first call per module reads its debug information (tens of
// milliseconds for a large program); runtime::dump calls it only in debug mode. Thread-safe.
std::string source_location_of(const void* address);

}  // namespace weft::detail
