// examples/generators.cpp: runs the "Async Generators", "Async Iterators" and "Async
// Comprehensions" examples (generators.hpp).
#include "generators.hpp"

int main() { return examples::generators::run(); }
