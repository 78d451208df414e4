// examples/create_task.cpp: runs the "asyncio.create_task()" example (create_task.hpp).
#include "create_task.hpp"

int main() { return examples::create_task::run(); }
