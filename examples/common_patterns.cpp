// examples/common_patterns.cpp: runs the "Common Patterns" example (common_patterns.hpp).
#include "common_patterns.hpp"

int main() { return examples::common_patterns::run(); }
