// examples/task_group.cpp: runs the "Task Groups (Python 3.11+)" example (task_group.hpp).
#include "task_group.hpp"

int main() { return examples::task_group::run(); }
