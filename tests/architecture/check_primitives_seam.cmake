# check_primitives_seam.cmake: fails when a file of primitives/ (its public headers, its private
# headers and its .cpp files) includes a scheduler detail header other than the allowed ones, or
# one of the scheduler's private headers (scheduler/*.hpp, which are not on its include path, but
# a relative path would reach them).
#
#   cmake -DWEFT_SOURCE_DIR=<top of the tree> -P check_primitives_seam.cmake
#
# The allowed scheduler detail headers, each with its reason:
#   waiting.hpp    the seam itself: park a task in a cancellable wait, wake it, the current task
#                  and runtime (docs/architecture.md, "The seam")
#   duration.hpp   converting a std::chrono duration to the scheduler's clock: a value, no state
#   timer_entry.hpp  timeout and wait arm the scheduler's timer entries (the timer seam)
#   spinlock.hpp   the one spinlock of the tree (yields after a short spin), shared on purpose
#   intrusive_list.hpp  the one intrusive list of the tree (the primitives' wait queues and
#                  queue_core's waiter lists use it, as do the scheduler's registry and timer
#                  wheel): a value type over links embedded in the nodes, with no scheduler state,
#                  shared on purpose so that its invariants are argued and tested once
cmake_minimum_required(VERSION 3.20)
set(allowed waiting.hpp duration.hpp timer_entry.hpp spinlock.hpp intrusive_list.hpp)

if(NOT WEFT_SOURCE_DIR)
  message(FATAL_ERROR "check_primitives_seam: pass -DWEFT_SOURCE_DIR=<top of the tree>")
endif()
file(GLOB_RECURSE files "${WEFT_SOURCE_DIR}/primitives/*.hpp" "${WEFT_SOURCE_DIR}/primitives/*.cpp")
if(NOT files)
  message(FATAL_ERROR "check_primitives_seam: no file found under ${WEFT_SOURCE_DIR}/primitives")
endif()

set(violations "")
foreach(file IN LISTS files)
  file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "weft/scheduler/detail/([A-Za-z0-9_./]+)")
      if(NOT CMAKE_MATCH_1 IN_LIST allowed)
        string(APPEND violations "\n  ${file}: ${line}")
      endif()
    elseif(line MATCHES "[\"<](\\.\\./)+scheduler/" OR line MATCHES "[\"<]scheduler/")
      string(APPEND violations "\n  ${file}: ${line} (a private header of the scheduler)")
    endif()
  endforeach()
endforeach()

if(violations)
  list(JOIN allowed ", " allowed_text)
  message(FATAL_ERROR "primitives/ includes scheduler internals outside the seam (allowed: "
                      "${allowed_text}; tests/architecture/check_primitives_seam.cmake):"
                      "${violations}")
endif()
list(LENGTH files count)
message(STATUS "primitives/: ${count} files include only the scheduler's seam")
