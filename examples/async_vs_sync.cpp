// examples/async_vs_sync.cpp: runs the "Async vs Sync" example (async_vs_sync.hpp).
#include "async_vs_sync.hpp"

int main() { return examples::async_vs_sync::run(); }
