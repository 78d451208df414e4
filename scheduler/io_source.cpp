// scheduler/io_source.cpp: weft::io_source, a file descriptor registered with the runtime's
// poller (io.hpp has the readiness protocol and the awaiter; poller.cpp the registrations).
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/io.hpp>

#include <stdexcept>
#include <string>

#include <weft/scheduler/runtime.hpp>

#include "runtime_core.hpp"

namespace weft {

namespace {
detail::runtime_core& calling_runtime(const char* what) {
  detail::runtime_core* rt = detail::current_runtime_core();
  if (rt == nullptr) throw std::logic_error(std::string(what) + " outside a weft runtime");
  return *rt;
}
}  // namespace

io_source::io_source(int fd)
    : fd_(fd), reg_(calling_runtime("weft::io_source(fd) constructed").poller.register_fd(fd)) {}

io_source::io_source(runtime& rt, int fd) : fd_(fd), reg_(rt.core_->poller.register_fd(fd)) {}

io_source::~io_source() {
  if (reg_->orphaned) {
    delete reg_;  // the runtime is gone
  } else {
    reg_->owner->deregister(reg_);
  }
}

}  // namespace weft
