// weft/scheduler/detail/await_trampoline.hpp: symmetric transfer that uses no stack even where
// the compiler does not turn it into a tail call (g++ without -O2, or under sanitizers).
//
// Awaiting a task returns the task's handle from await_suspend, and a finishing task returns its
// awaiter's handle from final_suspend (symmetric transfer). The coroutine then resumes that
// handle and returns. clang always compiles that resumption as a tail call; g++ 12 only with
// sibling-call optimization (-O2) and not under sanitizers, so in a debug build every nested await
// adds a stack frame, and a chain of a million nested awaits overflows an 8 MiB stack (between
// 40,000 and 80,000 deep at -O0).
//
// Where WEFT_AWAIT_TRAMPOLINE is 1, `transfer(from, to)` does not return `to` when the worker loop
// can run it instead: it leaves `to` in this thread's trampoline, returns std::noop_coroutine()
// (which suspends `from` and returns straight to whoever resumed it), and the worker loop resumes
// `to` next (worker.cpp, worker::resume). The stack then stays flat whatever the depth.
//
// When the hand-off is correct: only when `from` is the coroutine the worker loop resumed (or the
// last one handed to it), `trampoline.running`. Such a coroutine was resumed directly by the worker
// loop, or by symmetric transfers from it, and a coroutine that resumes another by symmetric
// transfer does nothing after that resumption returns but return itself; so once `from` suspends,
// control comes back to the worker loop without running any other code, and the loop resumes `to`
// at once: the same order as a tail call. Any other resumer (a coroutine resumed by a non-weft
// `handle.resume()` that expects the coroutine to have run on when it returns, or code on a thread
// that is not a worker) sees `running` differ from `from`, and gets plain symmetric transfer.
// `running` is cleared by the hand-off, so one step hands off at most once.
//
// WEFT_AWAIT_TRAMPOLINE defaults to 1 for g++ when the translation unit is not optimized
// (__OPTIMIZE__ undefined, i.e. -O0) or built with a sanitizer, and to 0 otherwise (clang, g++ -O1
// and above). g++ at -O1 or -Og has no tail calls either but cannot be told from -O2 by a macro:
// define WEFT_AWAIT_TRAMPOLINE=1 there (or add -foptimize-sibling-calls). Translation units may
// differ: the worker loop always runs the trampoline, and a plain transfer needs none of it.
#pragma once

#include <coroutine>

#include <weft/scheduler/export.hpp>

#ifndef WEFT_AWAIT_TRAMPOLINE
#if defined(__clang__)
#define WEFT_AWAIT_TRAMPOLINE 0
#elif defined(__GNUC__) && \
    (!defined(__OPTIMIZE__) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define WEFT_AWAIT_TRAMPOLINE 1
#else
#define WEFT_AWAIT_TRAMPOLINE 0
#endif
#endif

namespace weft::detail {

// One per thread; used only by its own thread (no atomics). On a thread that is not a worker,
// `running` stays null, so every transfer there is a plain one.
struct await_trampoline {
  void* running;  // the coroutine that may hand off to the worker loop; null: none
  void* next;     // what the worker loop resumes when the running step returns; null: nothing
};

WEFT_API extern thread_local await_trampoline trampoline;

// The handle for `from`'s await_suspend (or final_suspend) to return so that `to` runs next.
inline std::coroutine_handle<> transfer([[maybe_unused]] std::coroutine_handle<> from,
                                        std::coroutine_handle<> to) noexcept {
#if WEFT_AWAIT_TRAMPOLINE
  await_trampoline& t = trampoline;
  // (A std::noop_coroutine() `to`, from a finishing spawned task that nobody awaits, is returned
  // as it is: there is nothing to run next.)
  if (t.running != nullptr && t.running == from.address() &&
      to.address() != std::noop_coroutine().address()) {
    t.running = nullptr;
    t.next = to.address();
    return std::noop_coroutine();
  }
#endif
  return to;
}

}  // namespace weft::detail
