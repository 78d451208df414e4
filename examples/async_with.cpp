// examples/async_with.cpp: runs the "Async Context Managers" example (async_with.hpp).
#include "async_with.hpp"

int main() { return examples::async_with::run(); }
