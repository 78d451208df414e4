// examples/queue.cpp: runs the "Async Queue" producer/consumer example (queue.hpp).
#include "queue.hpp"

int main() { return examples::queue::run(); }
