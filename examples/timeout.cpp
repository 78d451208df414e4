// examples/timeout.cpp: runs the "Async Context Manager with Timeout" example (timeout.hpp).
#include "timeout.hpp"

int main() { return examples::timeout::run(); }
