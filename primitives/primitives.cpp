// primitives/primitives.cpp: compiles every public header of the layer once inside the library, so
// a header that does not stand on its own fails the library build, not a user's.
#include <weft/primitives/async_iterator.hpp>
#include <weft/primitives/async_with.hpp>
#include <weft/primitives/barrier.hpp>
#include <weft/primitives/bounded.hpp>
#include <weft/primitives/cancel_all.hpp>
#include <weft/primitives/channel.hpp>
#include <weft/primitives/condition_variable.hpp>
#include <weft/primitives/detail/wake_signal.hpp>
#include <weft/primitives/event.hpp>
#include <weft/primitives/exception_group.hpp>
#include <weft/primitives/gather.hpp>
#include <weft/primitives/generator.hpp>
#include <weft/primitives/latch.hpp>
#include <weft/primitives/merge.hpp>
#include <weft/primitives/mutex.hpp>
#include <weft/primitives/oneshot.hpp>
#include <weft/primitives/outcome.hpp>
#include <weft/primitives/queue.hpp>
#include <weft/primitives/rate_limiter.hpp>
#include <weft/primitives/retry.hpp>
#include <weft/primitives/semaphore.hpp>
#include <weft/primitives/streams.hpp>
#include <weft/primitives/task_group.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/primitives/wait.hpp>
