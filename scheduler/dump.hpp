// scheduler/dump.hpp: the runtime's diagnostics entry points shared by its parts (dump.cpp,
// counters.cpp, dump_signal.cpp).
#pragma once

#include <cstddef>

#include <weft/scheduler/diagnostics.hpp>

namespace weft::detail {

class runtime_core;
struct cancel_hook;
class task_header;

// runtime::dump() and runtime::counters(); any thread, never waiting for a worker.
runtime_dump dump_runtime(runtime_core& rt);
runtime_counters counters_of(runtime_core& rt);

// runtime_options::dump_on_signal: installs the process's SIGUSR1 handler and starts the thread
// that prints the dumps, once per process. Throws std::system_error if the pipe, the thread or the
// handler cannot be made.
void enable_dump_signal();

// fork_join.cpp's part of the dump: the children of a fork_join whose caller waits on `hook`.
struct fork_child {
  task_header* header;
  void* frame;
};
enum class fork_listing {
  not_fork,  // `hook` is not a fork_join's
  unlisted,  // a fork_join whose slots are outside its awaiter (the vector form): not read
  listed,    // `children` holds its children (at most `max`)
};
// Requires: the dump saw `hook` published by a task and holds a frame_inspection (its caller's
// frame, which holds the awaiter, is alive or put aside). Reads plain fields that the task may
// be overwriting if its wait ended meanwhile: the dump re-checks the hook afterwards.
fork_listing fork_children_of(const cancel_hook* hook, fork_child* children, std::size_t max,
                              std::size_t& count) noexcept;

}  // namespace weft::detail
