// tests/model/mutation.hpp: what a model test expects in a mutant build.
//
// Each model test source is compiled once as is and once per mutant it covers, with
// -DWEFT_MODEL_MUTANT=<name> (tests/model/CMakeLists.txt); WEFT_ORDER in the code under test then
// weakens that one ordering (weft/scheduler/detail/atomic.hpp). The unmutated build requires every
// scenario to pass; a mutant build requires the checker to find a failing execution in at least
// one scenario, and prints it.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <functional>
#include <initializer_list>

#include "model_checker.hpp"

#define WEFT_MODEL_STRINGIFY2(x) #x
#define WEFT_MODEL_STRINGIFY(x) WEFT_MODEL_STRINGIFY2(x)

#ifdef WEFT_MODEL_MUTANT
#define WEFT_MODEL_MUTANT_NAME WEFT_MODEL_STRINGIFY(WEFT_MODEL_MUTANT)
#endif

#ifdef WEFT_MODEL_MUTANT
// A mutant build ends in a failed execution, whose fibers the checker abandons mid-call: what
// their frames own is never freed. That is by design, so LeakSanitizer stays quiet here (the
// unmutated builds, whose executions all finish, keep leak checking).
// (Defined here, not inline: each model test is one translation unit.)
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }
#endif

namespace weft_model_test {

struct scenario {
  const char* name;
  std::function<weft::model::result()> run;
};

// The unmutated build: every scenario explores completely and passes.
inline void require_all_pass(std::initializer_list<scenario> scenarios) {
  for (const scenario& s : scenarios) {
    const weft::model::result r = s.run();
    INFO("scenario: " << s.name << "; executions: " << r.executions);
    CHECK_MESSAGE(!r.failed, r.message);
    CHECK(r.complete);
    std::printf("model: %-60s %8llu executions, passed\n", s.name,
                static_cast<unsigned long long>(r.executions));
  }
}

// A mutant build: some scenario fails. Prints the first failure it finds (the counterexample).
inline void require_some_failure(std::initializer_list<scenario> scenarios) {
  for (const scenario& s : scenarios) {
    const weft::model::result r = s.run();
    if (r.failed) {
      std::printf("model: mutant caught by scenario \"%s\" after %llu executions:\n%s\n", s.name,
                  static_cast<unsigned long long>(r.executions), r.message.c_str());
      return;
    }
  }
  FAIL("no scenario fails on this mutant: the checker cannot tell it from the real code");
}

}  // namespace weft_model_test
