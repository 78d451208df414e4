// scheduler/symbolizer.cpp: see symbolizer.hpp.
#include "symbolizer.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#ifdef WEFT_BACKTRACE_HEADER
#include WEFT_BACKTRACE_HEADER
#endif

namespace weft::detail {
namespace {

struct function_symbol {
  std::uintptr_t start = 0;  // module-relative for ET_DYN modules, absolute for ET_EXEC
  std::uintptr_t size = 0;
  std::string name;  // mangled
};

struct module_symbols {
  bool absolute = false;                   // ET_EXEC: symbol values are addresses
  std::vector<function_symbol> functions;  // sorted by start
};

// Reads the FUNC symbols of the ELF file at `path` (empty if it cannot be read or has no .symtab).
module_symbols read_symbols(const char* path) {
  module_symbols out;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat info {};
  if (fstat(fd, &info) != 0 || static_cast<std::size_t>(info.st_size) < sizeof(Elf64_Ehdr)) {
    close(fd);
    return out;
  }
  const auto size = static_cast<std::size_t>(info.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(base);
  const auto in_file = [size](std::uint64_t offset, std::uint64_t bytes) {
    return offset <= size && bytes <= size - offset;
  };
  if (std::memcmp(header->e_ident, ELFMAG, SELFMAG) == 0 &&
      header->e_ident[EI_CLASS] == ELFCLASS64 &&
      in_file(header->e_shoff, std::uint64_t{header->e_shnum} * sizeof(Elf64_Shdr))) {
    out.absolute = header->e_type == ET_EXEC;
    const auto* sections = reinterpret_cast<const Elf64_Shdr*>(base + header->e_shoff);
    for (unsigned i = 0; i < header->e_shnum; ++i) {
      const Elf64_Shdr& symtab = sections[i];
      if (symtab.sh_type != SHT_SYMTAB || symtab.sh_link >= header->e_shnum) continue;
      const Elf64_Shdr& strtab = sections[symtab.sh_link];
      if (!in_file(symtab.sh_offset, symtab.sh_size) ||
          !in_file(strtab.sh_offset, strtab.sh_size)) {
        continue;
      }
      const auto* symbols = reinterpret_cast<const Elf64_Sym*>(base + symtab.sh_offset);
      const std::size_t count = symtab.sh_size / sizeof(Elf64_Sym);
      const char* names = reinterpret_cast<const char*>(base + strtab.sh_offset);
      for (std::size_t s = 0; s < count; ++s) {
        const Elf64_Sym& sym = symbols[s];
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0) continue;
        if (sym.st_name >= strtab.sh_size) continue;
        const char* name = names + sym.st_name;
        const std::size_t length = strnlen(name, strtab.sh_size - sym.st_name);
        out.functions.push_back({sym.st_value, sym.st_size, std::string(name, length)});
      }
    }
  }
  munmap(map, size);
  std::sort(out.functions.begin(), out.functions.end(),
            [](const function_symbol& a, const function_symbol& b) { return a.start < b.start; });
  return out;
}

std::mutex cache_mutex;
std::map<std::string, module_symbols>& cache() {
  static auto* modules = new std::map<std::string, module_symbols>;  // lives for the process
  return *modules;
}

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(name);
}

// True if `path` (a dli_fname) is the main program: empty, or the same file as /proc/self/exe.
bool is_main_program(const char* path) {
  if (path[0] == '\0') return true;
  struct stat self {};
  struct stat other {};
  if (stat("/proc/self/exe", &self) != 0 || stat(path, &other) != 0) return false;
  return self.st_dev == other.st_dev && self.st_ino == other.st_ino;
}

}  // namespace

std::string symbolize(const void* address) {
  char buffer[64];
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(buffer, sizeof buffer, "%p", address);
    return buffer;
  }
  // The main program's dli_fname is argv[0] as typed, or empty: read it through /proc instead.
  const std::string path = is_main_program(info.dli_fname) ? "/proc/self/exe" : info.dli_fname;
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  const auto module_base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  {
    std::lock_guard lock(cache_mutex);
    auto it = cache().find(path);
    if (it == cache().end()) it = cache().emplace(path, read_symbols(path.c_str())).first;
    const module_symbols& module = it->second;
    const std::uintptr_t key = module.absolute ? at : at - module_base;
    auto next =
        std::upper_bound(module.functions.begin(), module.functions.end(), key,
                         [](std::uintptr_t k, const function_symbol& f) { return k < f.start; });
    while (next != module.functions.begin()) {
      --next;
      if (key < next->start + std::max<std::uintptr_t>(next->size, 1)) {
        return demangle(next->name.c_str());
      }
      if (next->size != 0) break;  // the nearest sized function ends before the address
    }
  }
  if (info.dli_sname != nullptr) return demangle(info.dli_sname);
  const char* slash = std::strrchr(info.dli_fname, '/');
  std::snprintf(buffer, sizeof buffer, "+0x%zx", static_cast<std::size_t>(at - module_base));
  return std::string(slash != nullptr ? slash + 1 : info.dli_fname) + buffer;
}

#ifdef WEFT_BACKTRACE_HEADER

namespace {

void ignore_error(void* /*data*/, const char* /*message*/, int /*errnum*/) {}

// One state for the process: it reads each module's DWARF once, on first use. Threaded: lookups
// may run from several threads at once. Null if it cannot be made (then no locations).
backtrace_state* line_tables() {
  static backtrace_state* const state =
      backtrace_create_state(nullptr, /*threaded=*/1, ignore_error, nullptr);
  return state;
}

}  // namespace

std::string source_location_of(const void* address) {
  backtrace_state* state = line_tables();
  if (state == nullptr) return {};
  std::string found;
  // Called once per inlined frame at `address`, innermost first: the last call is the function
  // the address belongs to.
  const auto take = [](void* data, std::uintptr_t /*pc*/, const char* file, int line,
                       const char* /*function*/) -> int {
    if (file != nullptr && line > 0) {
      *static_cast<std::string*>(data) = std::string(file) + ":" + std::to_string(line);
    }
    return 0;
  };
  backtrace_pcinfo(state, reinterpret_cast<std::uintptr_t>(address), take, ignore_error, &found);
  return found;
}

#else

std::string source_location_of(const void* /*address*/) { return {}; }

#endif

}  // namespace weft::detail
