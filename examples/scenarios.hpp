// examples/scenarios.hpp: the entry point of each example, for weft_demo. Each examples/<name>.cpp
// defines examples::<name>::run(), which runs its scenario and returns the program's exit status
// (0 when every result and timing was right). Built on its own, <name>.cpp adds a main() that
// calls run(); weft_demo compiles the same files with WEFT_EXAMPLE_NO_MAIN and calls each run()
// in turn.
#pragma once

namespace examples {

namespace async_functions {
int run();
}
namespace async_vs_sync {
int run();
}
namespace gather {
int run();
}
namespace create_task {
int run();
}
namespace wait {
int run();
}
namespace timeout {
int run();
}
namespace cancellation {
int run();
}
namespace task_group {
int run();
}
namespace common_patterns {
int run();
}
namespace async_with {
int run();
}
namespace generators {
int run();
}
namespace queue {
int run();
}
namespace locks {
int run();
}
namespace echo {
int run();
}
namespace offload {
int run();
}
namespace http_client {
int run();
}

}  // namespace examples
