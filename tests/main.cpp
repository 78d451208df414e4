// tests/main.cpp: the doctest main() shared by every test executable, and the listener that lets
// the watchdog (support/watchdog.hpp) name the test case that hangs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mutex>
#include <string>

#include "support/watchdog.hpp"

namespace weft_test {

namespace {
std::mutex name_mutex;
std::string running_test = "(outside any test case)";

struct test_name_listener : doctest::IReporter {
  explicit test_name_listener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& data) override {
    std::lock_guard lock(name_mutex);
    running_test = data.m_name;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
}  // namespace

std::string current_test_name() {
  std::lock_guard lock(name_mutex);
  return running_test;
}

}  // namespace weft_test

DOCTEST_REGISTER_LISTENER("weft_test_name", 1, weft_test::test_name_listener);
