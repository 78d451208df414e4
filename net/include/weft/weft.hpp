// <weft/weft.hpp>: all of weft.
//
// weft brings Python's asyncio patterns to C++20 coroutines on a work-stealing thread pool:
//
//   #include <weft/weft.hpp>
//   using namespace std::chrono_literals;
//
//   weft::task<int> fetch(int id) { co_await weft::sleep(100ms); co_return id * 2; }
//
//   weft::task<int> async_main() {
//     auto [a, b] = co_await weft::gather(fetch(1), fetch(2));   // both at once: 100 ms
//     co_return a + b;
//   }
//
//   int main() { return weft::run(async_main()) == 6 ? 0 : 1; }
//
// The layers, each including only those below it: net (sockets, streams, DNS, HTTP parsing, worker
// processes, TLS, the HTTP client; <weft/net/process_codec_json.hpp> and
// <weft/net/http/client_json.hpp> are not included here: they need nlohmann-json),
// primitives (gather and the synchronization and stream types), scheduler (tasks, the runtime,
// timers).
#pragma once

#include <weft/net/address.hpp>
#include <weft/net/dns.hpp>
#include <weft/net/errors.hpp>
#include <weft/net/file.hpp>
#include <weft/net/http/client.hpp>
#include <weft/net/http/message.hpp>
#include <weft/net/http/parser.hpp>
#include <weft/net/http/router.hpp>
#include <weft/net/http/serializer.hpp>
#include <weft/net/http/server.hpp>
#include <weft/net/http/transport.hpp>
#include <weft/net/process_codec.hpp>
#include <weft/net/process_pool.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/net/streams.hpp>
#include <weft/net/tcp.hpp>
#include <weft/net/tls.hpp>
#include <weft/net/udp.hpp>
#include <weft/net/unix.hpp>
#include <weft/primitives/async_iterator.hpp>
#include <weft/primitives/async_with.hpp>
#include <weft/primitives/barrier.hpp>
#include <weft/primitives/bounded.hpp>
#include <weft/primitives/cancel_all.hpp>
#include <weft/primitives/channel.hpp>
#include <weft/primitives/condition_variable.hpp>
#include <weft/primitives/event.hpp>
#include <weft/primitives/exception_group.hpp>
#include <weft/primitives/gather.hpp>
#include <weft/primitives/generator.hpp>
#include <weft/primitives/latch.hpp>
#include <weft/primitives/lifo_queue.hpp>
#include <weft/primitives/merge.hpp>
#include <weft/primitives/mutex.hpp>
#include <weft/primitives/oneshot.hpp>
#include <weft/primitives/outcome.hpp>
#include <weft/primitives/priority_queue.hpp>
#include <weft/primitives/queue.hpp>
#include <weft/primitives/rate_limiter.hpp>
#include <weft/primitives/retry.hpp>
#include <weft/primitives/semaphore.hpp>
#include <weft/primitives/streams.hpp>
#include <weft/primitives/task_group.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/primitives/wait.hpp>
#include <weft/scheduler/compute.hpp>
#include <weft/scheduler/current_task.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/fork_join.hpp>
#include <weft/scheduler/frame_allocator.hpp>
#include <weft/scheduler/frame_executor.hpp>
#include <weft/scheduler/io.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/runtime.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/spawn.hpp>
#include <weft/scheduler/task.hpp>
#include <weft/scheduler/to_thread.hpp>
