// scheduler/dump_signal.cpp: SIGUSR1 prints the dump of every runtime that asked
// (runtime_options::dump_on_signal) to stderr.
//
// A signal handler may only call async-signal-safe functions, and a dump allocates and takes
// locks. So the handler writes one byte to a pipe (write(2) is async-signal-safe; errno is saved
// around it), and a thread of weft's, blocked reading the other end, formats and prints. The write
// end is non-blocking: signals that arrive faster than dumps are printed fill the pipe, and the
// extra bytes are dropped (one dump answers many signals). The thread lives for the process, like
// the handler: a runtime destroyed later is no longer listed in live_runtimes, which the thread
// reads under live_runtimes_mutex (so a runtime it dumps cannot be freed meanwhile).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "dump.hpp"
#include "runtime_core.hpp"

namespace weft::detail {
namespace {

// Written once under install_once, before the handler is installed and the thread started.
int signal_pipe[2] = {-1, -1};
std::once_flag install_once;

extern "C" void on_dump_signal(int) {
  const int saved = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(signal_pipe[1], &byte, 1);
  errno = saved;
}

void write_all(int fd, const std::string& text) noexcept {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

void print_dumps() noexcept {
  try {
    std::lock_guard lock(live_runtimes_mutex);
    for (runtime_core* rt : live_runtimes) {
      if (!rt->options.dump_on_signal) continue;
      write_all(STDERR_FILENO, "weft: SIGUSR1: runtime '" + rt->options.thread_name + "'\n" +
                                   dump_runtime(*rt).to_string());
    }
  } catch (...) {
    write_all(STDERR_FILENO, "weft: SIGUSR1: the dump failed (out of memory?)\n");
  }
}

void printer_loop() noexcept {
  char bytes[64];
  for (;;) {
    const ssize_t n = read(signal_pipe[0], bytes, sizeof bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    print_dumps();
  }
}

}  // namespace

void enable_dump_signal() {
  std::call_once(install_once, [] {
    if (pipe2(signal_pipe, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: dump_on_signal: cannot create the signal pipe");
    }
    const int flags = fcntl(signal_pipe[1], F_GETFL);
    fcntl(signal_pipe[1], F_SETFL, flags | O_NONBLOCK);
    std::thread(printer_loop).detach();
    struct sigaction action {};
    action.sa_handler = on_dump_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &action, nullptr) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: dump_on_signal: cannot install the SIGUSR1 handler");
    }
  });
}

}  // namespace weft::detail
