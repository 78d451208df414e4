// net/process_codec.cpp: the non-template parts of the process_pool codec and function registry:
// demangled type names, codec error messages, request headers, and the table of functions every
// process of the program fills in during its static initialization.
#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <weft/net/process_pool.hpp>

#include "process_protocol.hpp"
#include "process_registry.hpp"

namespace weft::detail {

namespace {

// FNV-1a over the mangled name of the function's type: the same program gives the same value in
// the parent and its workers; a worker built from other sources disagrees and says so.
std::uint64_t hash_name(const char* text) noexcept {
  std::uint64_t hash = 14695981039346656037ULL;
  for (; *text != '\0'; ++text) {
    hash ^= static_cast<unsigned char>(*text);
    hash *= 1099511628211ULL;
  }
  return hash;
}

struct registry {
  std::mutex mutex;
  // A name registered by two different functions maps to nullptr: calls to it fail clearly.
  std::map<std::string, const process_function_base*, std::less<>> functions;
};

registry& the_registry() {
  // A function-local static: registrations run during static initialization, in any order.
  static registry instance;
  return instance;
}

}  // namespace

process_function_base::process_function_base(const char* name, const std::type_info& signature)
    : name_(name), signature_(hash_name(signature.name())) {
  auto& r = the_registry();
  std::lock_guard lock(r.mutex);
  auto [it, inserted] = r.functions.emplace(name, this);
  if (!inserted && it->second != this) it->second = nullptr;
}

lookup_result find_process_function(std::string_view name) {
  auto& r = the_registry();
  std::lock_guard lock(r.mutex);
  auto it = r.functions.find(name);
  if (it == r.functions.end()) return {nullptr, false};
  return {it->second, it->second == nullptr};
}

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> text(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  return status == 0 && text ? std::string(text.get()) : std::string(mangled);
}

void throw_codec_failure(const char* function, const char* what, const std::string& type,
                         const std::exception& why) {
  throw codec_error("weft::process_pool: '" + std::string(function) + "': cannot " + what +
                    " (type " + type + "): " + why.what());
}

void begin_request(std::string& out, process_request_kind kind,
                   const process_function_base& function) {
  const std::string_view name = function.name();
  out.resize(process_protocol::length_size);  // filled in when the request is sent
  out.push_back(static_cast<char>(kind));
  const std::uint64_t signature = function.signature();
  out.append(reinterpret_cast<const char*>(&signature), sizeof signature);
  const auto name_size = static_cast<std::uint16_t>(name.size());
  out.append(reinterpret_cast<const char*>(&name_size), sizeof name_size);
  out.append(name.substr(0, name_size));
}

}  // namespace weft::detail
