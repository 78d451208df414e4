// weft/scheduler/export.hpp: the symbol visibility of libweft.
//
// libweft is built with hidden visibility; only what carries WEFT_API is part of its ABI. The same
// macro serves the shared and the static library (default visibility is harmless in an archive).
#pragma once

#if defined(_WIN32)
#error "weft targets Linux (epoll, eventfd, futex)"
#endif

#define WEFT_API __attribute__((visibility("default")))
