// examples/locks.cpp: runs the "Async lock" and "Async semaphore" example (locks.hpp).
#include "locks.hpp"

int main() { return examples::locks::run(); }
