// net/process_spawn.cpp: starting worker processes without fork.
//
// posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK) and exec) is safe in a threaded process,
// where fork is not: a forked child has one thread and whatever locks the others held. Every
// descriptor the pool opens is close-on-exec, so a worker inherits only what the file actions
// below give it: its end of its own socketpair as descriptor 3, /dev/null as stdin, and the
// parent's stdout and stderr (so a worker's crash report is seen).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "process_protocol.hpp"
#include "process_spawn.hpp"

extern char** environ;

namespace weft::detail {

namespace {

std::string self_executable() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(path, static_cast<std::size_t>(n));
}

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  // Close-on-exec by default. ENOSYS on kernels before 5.3: the pool then polls waitpid.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

spawn_plan make_spawn_plan(const process_pool_options& options) {
  spawn_plan plan;
  plan.executable = options.executable.empty() ? self_executable() : options.executable;
  plan.argv.push_back(plan.executable);
  for (const auto& arg : options.arguments)
    plan.argv.push_back(arg);
  const std::string prefix = std::string(process_protocol::worker_variable) + "=";
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, prefix.c_str(), prefix.size()) != 0) plan.envp.emplace_back(*entry);
  }
  plan.envp.push_back(prefix + std::to_string(::getpid()) + "," +
                      std::to_string(options.memory_limit));
  for (const auto& entry : options.environment)
    plan.envp.push_back(entry);
  return plan;
}

spawned_worker spawn_worker(const spawn_plan& plan) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "weft::process_pool: socketpair for a worker");
  }
  fd_guard parent_end{pair[0]};
  fd_guard child_end{pair[1]};
  // The child's end must not already be descriptor 3: dup2 onto itself would leave it
  // close-on-exec on older glibc. Descriptors 0-9 are avoided altogether.
  if (child_end.fd < 10) {
    const int moved = ::fcntl(child_end.fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) {
      throw std::system_error(errno, std::generic_category(), "weft::process_pool: fcntl");
    }
    ::close(child_end.fd);
    child_end.fd = moved;
  }
  if (::fcntl(parent_end.fd, F_SETFL, ::fcntl(parent_end.fd, F_GETFL) | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "weft::process_pool: fcntl");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_end.fd, process_protocol::worker_fd);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (const auto& arg : plan.argv)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : plan.envp)
    envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int error =
      ::posix_spawn(&pid, plan.executable.c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    throw std::system_error(
        error, std::generic_category(),
        "weft::process_pool: cannot start the worker '" + plan.executable + "'");
  }
  spawned_worker worker;
  worker.pid = pid;
  worker.pidfd = open_pidfd(pid);
  worker.socket = parent_end.fd;
  parent_end.fd = -1;
  return worker;
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    const char* description = ::sigdescr_np(sig);
    return "was killed by signal " +
           (abbrev != nullptr ? "SIG" + std::string(abbrev) : std::to_string(sig)) +
           (description != nullptr ? " (" + std::string(description) + ")" : std::string());
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace weft::detail
