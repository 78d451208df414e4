// net/process_spawn.hpp: starting one worker process and describing how it ended.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <weft/net/process_pool.hpp>

namespace weft::detail {

struct spawned_worker {
  pid_t pid = -1;
  int socket = -1;  // the parent's end: non-blocking, close-on-exec
  int pidfd = -1;   // readable when the process exits; -1 where pidfd_open is missing (< 5.3)
};

// What every spawn of one pool shares: argv and envp, built once.
struct spawn_plan {
  std::string executable;
  std::vector<std::string> argv;
  std::vector<std::string> envp;
};

spawn_plan make_spawn_plan(const process_pool_options& options);

// posix_spawn (no fork) with the worker's socket end mapped to descriptor 3, stdin from
// /dev/null, every signal at its default disposition and none blocked. Throws std::system_error.
spawned_worker spawn_worker(const spawn_plan& plan);

// "was killed by signal SIGSEGV (Segmentation fault)" or "exited with code 3".
std::string describe_exit(int status);

}  // namespace weft::detail
