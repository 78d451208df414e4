// tests/scheduler/test_dlopen.cpp: libweft loaded with dlopen by a program that does not link it
// (docs/embedding.md, "Loading weft with dlopen"). This executable links neither libweft nor its
// headers' inline code: it opens the plugin built from dlopen_plugin.cpp (path in
// WEFT_TEST_DLOPEN_PLUGIN), which pulls libweft in. libweft's thread-locals use the initial-exec
// model, so a dlopen of it must find room for its whole TLS block in the little static TLS that
// glibc keeps spare (about 1.7 KiB on Debian 12's glibc 2.36, measured with a probe library): a
// 17 KiB thread_local buffer in the TLS stream made this fail until the nineteenth session.
#include <doctest/doctest.h>

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "support/fib_reference.hpp"

namespace {

void* open_plugin() {
  // RTLD_NODELETE: libweft is never unloaded once loaded (its threads and the frame depot's
  // trimmer may outlive a dlclose), so the test does not pretend otherwise.
  void* handle = dlopen(WEFT_TEST_DLOPEN_PLUGIN, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) FAIL("dlopen: " << std::string(dlerror()));
  return handle;
}

using weft_test::fib_reference;

}  // namespace

TEST_CASE("dlopen: a program that does not link weft loads a plugin that runs a runtime") {
  REQUIRE(dlopen("libweft.so.0.1", RTLD_NOW | RTLD_NOLOAD) == nullptr);  // not linked here
  void* plugin = open_plugin();
  using run_fn = std::uint64_t (*)(int, long);
  void* entry = dlsym(plugin, "weft_plugin_run");
  REQUIRE(entry != nullptr);
  auto run = reinterpret_cast<run_fn>(entry);
  const long items = 20000;
  const std::uint64_t expected =
      fib_reference(20) + static_cast<std::uint64_t>(items * (items - 1) / 2);
  CHECK(run(20, items) == expected);
  CHECK(run(15, items) == fib_reference(15) + static_cast<std::uint64_t>(items * (items - 1) / 2));
}

TEST_CASE("dlopen: libweft's static TLS block stays small enough to be loaded late") {
  (void)open_plugin();
  struct search {
    bool found = false;
    std::size_t tls_bytes = 0;
  } result;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "libweft.so") == nullptr)
          return 0;
        auto* r = static_cast<search*>(out);
        r->found = true;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          if (info->dlpi_phdr[i].p_type == PT_TLS) r->tls_bytes = info->dlpi_phdr[i].p_memsz;
        }
        return 1;
      },
      &result);
  REQUIRE(result.found);
  MESSAGE("libweft's TLS block: " << result.tls_bytes << " bytes");
  // Well under the ~1.7 KiB glibc keeps spare, for the other libraries a plugin loads with it.
  CHECK(result.tls_bytes <= 1536);
}
