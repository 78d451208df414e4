// examples/gather.cpp: runs the "asyncio.gather()" example (gather.hpp).
#include "gather.hpp"

int main() { return examples::gather::run(); }
