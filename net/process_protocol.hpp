// net/process_protocol.hpp: the frames a process_pool and its workers exchange on the socketpair.
//
//   request  [u32 length][u8 kind][u64 signature][u16 name length][name][encoded arguments]
//   reply    [u32 length][u8 status][payload]
//
// A worker first writes one ready byte (ready_byte) when it starts serving. `length` counts the
// bytes after itself. Up to pipeline_depth requests are outstanding per worker; the worker
// answers them one at a time in the order they came (it reads the next request only after it wrote
// the whole reply to the last), so the n-th reply answers the n-th request. A reply nobody asked
// for means the worker is broken and it is killed. Native byte order: both ends are the same
// program on the same machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace weft::detail::process_protocol {

// The descriptor the worker's end of the socketpair is mapped to in the worker.
inline constexpr int worker_fd = 3;
// The environment variable that puts a process in worker mode: "<parent pid>,<memory limit>".
inline constexpr const char* worker_variable = "WEFT_PROCESS_WORKER";

// The byte a worker writes once, when it is ready to serve.
inline constexpr char ready_byte = 'R';

inline constexpr std::size_t length_size = 4;
inline constexpr std::size_t reply_header_size = length_size + 1;

enum class reply_status : unsigned char {
  ok = 0,                // payload: the encoded result
  error = 1,             // payload: [u16 type length][type][message]: the function threw
  codec = 2,             // payload: message: an argument or the result failed the codec
  unknown_function = 3,  // payload: message: no such function, or its signature differs
  out_of_memory = 4,     // payload: empty; the worker exits right after sending it
};

inline std::uint32_t read_length(const char* at) noexcept {
  std::uint32_t length = 0;
  std::memcpy(&length, at, sizeof length);
  return length;
}

inline void write_length(char* at, std::uint32_t length) noexcept {
  std::memcpy(at, &length, sizeof length);
}

}  // namespace weft::detail::process_protocol
