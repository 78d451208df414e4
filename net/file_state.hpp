// net/file_state.hpp: what a weft::file shares with its operations in flight.
//
// Invariant: the descriptor is closed when the last owner lets go: the file (its close() or
// destructor) and every operation still in the kernel or on a pool thread each hold a reference.
// So an operation whose task was cancelled never reads or writes a descriptor number that was
// closed and reused for another file meanwhile.
#pragma once

#include <unistd.h>

#include <string>

#include <weft/net/file.hpp>

namespace weft::detail {

struct file_state {
  file_state(int descriptor, std::string file_path, file_backend chosen, bool positional)
      : fd(descriptor), path(std::move(file_path)), backend(chosen), seekable(positional) {}
  file_state(const file_state&) = delete;
  file_state& operator=(const file_state&) = delete;
  ~file_state() {
    if (fd >= 0) ::close(fd);
  }

  int fd;
  const std::string path;
  const file_backend backend;  // io_uring or threads, never automatic
  // A regular file or block device: reads and writes take offsets. A pipe, FIFO or character
  // device is a stream: its reads and writes ignore offsets (read/write, io_uring offset -1).
  const bool seekable;
};

// Throws the file_error subclass for `error` (an errno value): "weft: <operation> <path>:
// <reason>".
[[noreturn]] void throw_file_error(int error, std::string_view operation, const std::string& path);

}  // namespace weft::detail
