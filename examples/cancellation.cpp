// examples/cancellation.cpp: runs the "Task Cancellation" examples (cancellation.hpp).
#include "cancellation.hpp"

int main() { return examples::cancellation::run(); }
