// examples/async_functions.cpp: runs the "Defining Async Functions" example (async_functions.hpp).
#include "async_functions.hpp"

int main() { return examples::async_functions::run(); }
