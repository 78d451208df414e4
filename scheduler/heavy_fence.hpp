// scheduler/heavy_fence.hpp: an asymmetric fence, for a Dekker-style protocol where one side runs
// often and the other rarely.
//
// The frequent side orders its store before its load with a compiler barrier only
// (std::atomic_signal_fence); the rare side calls heavy_fence() between its own two accesses.
// heavy_fence() is membarrier(2) with MEMBARRIER_CMD_PRIVATE_EXPEDITED: when it returns, every
// other thread of the process that was running has executed a full memory barrier at some point
// during the call (an inter-processor interrupt), and a thread that was not running has passed
// through the kernel's context switch, a full barrier too. So it acts as a seq_cst fence in every
// thread at some point of its program, totally ordered with a seq_cst fence in the caller. Take
// the frequent side's store A, its load B, and the point p that the call placed in its program:
// if p comes after A, A is visible to every access the caller makes after the call; if p comes
// before A, B comes after p too, and reads what the caller wrote (or read) before the call, or
// later values. That is the one of two outcomes that a pair of seq_cst fences would guarantee,
// and it is all that a Dekker argument uses.
//
// It costs 2-4 us and an interrupt on every core running a thread of this process (2-core VM),
// so it suits sides that run hundreds of times a second, not millions. The kernel may refuse it
// (before Linux 4.14, or a seccomp profile that forbids membarrier): heavy_fence_available() is
// then false and the callers keep their symmetric fences. ThreadSanitizer does not know that
// membarrier orders anything, so under TSan it is never available.
#pragma once

namespace weft::detail {

// True if heavy_fence() may be used. The first call registers the process for the private
// expedited command (once; thread-safe); later calls read the answer.
bool heavy_fence_available() noexcept;

// The rare side's barrier (see above). Requires heavy_fence_available().
void heavy_fence() noexcept;

}  // namespace weft::detail
