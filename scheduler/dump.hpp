// scheduler/dump.hpp: the runtime's diagnostics entry points shared by its parts (dump.cpp,
// counters.cpp, dump_signal.cpp).
#pragma once

#include <weft/scheduler/diagnostics.hpp>

namespace weft::detail {

class runtime_core;

// runtime::dump() and runtime::counters(); any thread, never waiting for a worker.
runtime_dump dump_runtime(runtime_core& rt);
runtime_counters counters_of(runtime_core& rt);

// runtime_options::dump_on_signal: installs the process's SIGUSR1 handler and starts the thread
// that prints the dumps, once per process. Throws std::system_error if the pipe, the thread or the
// handler cannot be made.
void enable_dump_signal();

}  // namespace weft::detail
