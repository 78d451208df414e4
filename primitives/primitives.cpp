// primitives/primitives.cpp: compiles every public header of the layer once inside the library, so
// a header that does not stand on its own fails the library build, not a user's.
#include <weft/primitives/cancel_all.hpp>
#include <weft/primitives/condition_variable.hpp>
#include <weft/primitives/event.hpp>
#include <weft/primitives/mutex.hpp>
#include <weft/primitives/semaphore.hpp>
#include <weft/primitives/gather.hpp>
#include <weft/primitives/exception_group.hpp>
#include <weft/primitives/task_group.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/primitives/wait.hpp>
#include <weft/primitives/outcome.hpp>
