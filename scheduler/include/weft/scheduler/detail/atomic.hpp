// weft/scheduler/detail/atomic.hpp: how the lock-free core spells its atomics, so that the model
// checker (tests/model/, docs/model-checking.md) can compile the real code.
//
// In every normal build, weft::detail::atomic<T> is std::atomic<T>, atomic_thread_fence is
// std::atomic_thread_fence and weft::detail::mutex is std::mutex: the same types, the same code.
// When WEFT_MODEL_CHECK is defined (tests/model only), they are the model checker's instrumented
// types, whose every operation is a point where the checker explores other interleavings and
// other values a load may read.
//
// WEFT_ORDER(name, order, weakened) marks an ordering that a protocol's correctness argument
// relies on. It is `order` in every build, except a model-checking build compiled with
// -DWEFT_MODEL_MUTANT=name, where it is `weakened`: the mutation tests build each such mutant and
// require the checker to find the bug it introduces (an ordering the checker cannot tell from a
// weaker one is an ordering nobody has proven necessary).
#pragma once

#include <atomic>

#ifdef WEFT_MODEL_CHECK
#include <model_checker.hpp>
#else
#include <mutex>
#endif

namespace weft::detail {

#ifdef WEFT_MODEL_CHECK
template <class T>
using atomic = ::weft::model::atomic<T>;
using ::weft::model::atomic_thread_fence;  // call it qualified: ADL would also find std::
using mutex = ::weft::model::mutex;
#else
template <class T>
using atomic = std::atomic<T>;
using std::atomic_thread_fence;
using mutex = std::mutex;
#endif

#if defined(WEFT_MODEL_CHECK) && defined(WEFT_MODEL_MUTANT)
// The mutants, one per ordering argued in the code (see the WEFT_ORDER uses).
namespace mutant {
enum name {
  deque_push_release,     // push(): the release store of bottom that publishes the slot
  deque_take_store,       // pop(): the seq_cst store of bottom (the take's StoreLoad, store side)
  deque_take_load,        // pop(): the seq_cst load of top (the take's StoreLoad, load side)
  deque_steal_load,       // steal(): the seq_cst load of bottom after top (the steal's fence)
  deque_recheck_load,     // size_estimate(): what a worker going to sleep re-reads
  idle_notify_fence,      // worker_to_notify(): the fence before reading the sleepers
  idle_local_fence,       // maybe_should_wake_for_local_work(): the same after a local push
  idle_park_rmw,          // transition_to_parked(): the seq_cst RMW of the worker going to sleep
  parker_unpark_release,  // unpark(): the release that the parked thread acquires
  cancel_publish_load,    // publish_hook(): the seq_cst load of cancel_state after the hook store
};
inline constexpr name selected = WEFT_MODEL_MUTANT;
}  // namespace mutant
#define WEFT_ORDER(name, order, weakened) \
  (::weft::detail::mutant::selected == ::weft::detail::mutant::name ? (weakened) : (order))
#else
#define WEFT_ORDER(name, order, weakened) (order)
#endif

}  // namespace weft::detail
