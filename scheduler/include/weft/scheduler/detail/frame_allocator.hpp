// weft/scheduler/detail/frame_allocator.hpp: where coroutine frames come from.
//
// Every weft::task frame is allocated through these two functions (see task.hpp's promise
// operator new). The recycling implementation keeps per-thread free lists in 16-byte size classes
// up to 2 KiB, so the common frame costs a pointer pop instead of a malloc; larger frames go to
// the system allocator. A frame freed on another thread than the one that allocated it joins the
// freeing thread's list (bounded by max_cached_frame_bytes per thread); the surplus goes to a depot
// shared by all threads, where a thread whose list is empty takes it back in batches (2 MiB kept
// for good; a burst's surplus, up to 1 GiB, only until a period passes in which nobody takes from
// it), and what the depot does not hold goes back to the system.
#pragma once

#include <chrono>
#include <cstddef>

#include <weft/scheduler/export.hpp>

namespace weft::detail {

WEFT_API void* allocate_frame(std::size_t size);
WEFT_API void deallocate_frame(void* frame, std::size_t size) noexcept;

// What one thread keeps at most in its lists (the recycling allocator; see frame_allocator.cpp).
inline constexpr std::size_t max_cached_frame_bytes = std::size_t{256} << 10;
// What the depot shared by all threads keeps for good (scheduler/frame_depot.hpp).
inline constexpr std::size_t kept_depot_frame_bytes = std::size_t{2} << 20;
// What it holds at most: a burst's surplus above the kept amount, for reuse by whichever thread
// allocates next, returned to the system once a whole period passed with no batch taken.
inline constexpr std::size_t max_depot_frame_bytes = std::size_t{1} << 30;
inline constexpr auto depot_surplus_period = std::chrono::seconds(1);
// The bytes of freed frames the calling thread keeps for reuse (0 with the system allocator).
WEFT_API std::size_t cached_frame_bytes() noexcept;
// The bytes of freed frames in the shared depot now (0 with the system allocator).
WEFT_API std::size_t depot_frame_bytes() noexcept;

}  // namespace weft::detail
