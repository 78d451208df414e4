// examples/wait.cpp: runs the "asyncio.wait()" example (wait.hpp).
#include "wait.hpp"

int main() { return examples::wait::run(); }
