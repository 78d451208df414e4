# tests/architecture/check_installed_headers.cmake: every header under a layer's include/ folder is
# in the install set (WEFT_*_PUBLIC_HEADERS), and the set names no file that is gone.
#
# A header missing from the set builds and tests fine inside the tree, where include/ is on the
# include path, and breaks only a user of the installed package: two new detail headers did so
# once, caught only by the consumer build at the very end of CI (.ci/consume).
#
# Usage: cmake -DWEFT_SOURCE_DIR=<top> "-DLISTED=<the sets, ;-separated>" -P <this file>
cmake_minimum_required(VERSION 3.25)
set(problems "")
foreach(layer scheduler primitives net)
  file(GLOB_RECURSE found RELATIVE "${WEFT_SOURCE_DIR}"
       "${WEFT_SOURCE_DIR}/${layer}/include/*.hpp" "${WEFT_SOURCE_DIR}/${layer}/include/*.h")
  foreach(header IN LISTS found)
    if(NOT "${WEFT_SOURCE_DIR}/${header}" IN_LIST LISTED)
      string(APPEND problems "\n  ${header}: not installed (add it to ${layer}/CMakeLists.txt)")
    endif()
  endforeach()
endforeach()
foreach(path IN LISTS LISTED)
  if(NOT EXISTS "${path}")
    string(APPEND problems "\n  ${path}: listed for installation but missing")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "the install set and the include folders differ:${problems}")
endif()
list(LENGTH LISTED count)
message(STATUS "all ${count} headers under include/ are installed")
