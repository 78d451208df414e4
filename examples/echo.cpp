// examples/echo.cpp: an echo server and its clients in one program, on asyncio's streams.
// Docs: docs/patterns/streams.md.
//
// The server (weft::start_server) answers every line it reads with the same line; three clients
// (weft::open_connection) connect at once, send a few lines each, check the answers, and
// half-close. Then the server closes gracefully: close() stops accepting, wait_closed() waits for
// the handlers. Everything runs on loopback, on a port the kernel picks.
//
//   Python                                             weft
//   async def handle(reader, writer):                  weft::task<> handle(weft::stream_reader
//   reader,
//       while line := await reader.readline():                         weft::stream_writer writer)
//           writer.write(line)
//           await writer.drain()
//   server = await asyncio.start_server(handle,        auto server = co_await weft::start_server(
//                                       host, 0)                     handle, host, 0);
//   reader, writer = await asyncio.open_connection(    auto [reader, writer] =
//                                       host, port)        co_await weft::open_connection(host,
//                                       port);

#include <cstdio>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::echo {

namespace {

// One connection: echo each line until the client half-closes (read_line returns "").
weft::task<> handle(weft::stream_reader reader, weft::stream_writer writer) {
  const std::string peer = reader.socket().peer_address().to_string();
  int lines = 0;
  for (;;) {
    std::string line = co_await reader.read_line();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();  // flow control: waits only if the client reads too slowly
    ++lines;
  }
  std::printf("  server: %s sent %d lines and closed\n", peer.c_str(), lines);
  writer.close();
  co_await writer.wait_closed();
}

// One client: send `count` lines, read each echo, return how many came back right.
weft::task<int> client(std::uint16_t port, int id, int count) {
  auto [reader, writer] = co_await weft::open_connection("127.0.0.1", port);
  int right = 0;
  for (int i = 0; i < count; ++i) {
    const std::string line = "client " + std::to_string(id) + " line " + std::to_string(i) + "\n";
    writer.write(line);
    co_await writer.drain();
    if (co_await reader.read_line() == line) ++right;
  }
  writer.write_eof();  // half-close: the server's read_line returns ""
  const bool ended = (co_await reader.read_all()).empty();
  co_return ended ? right : -1;
}

weft::task<int> async_main() {
  auto server = co_await weft::start_server(handle, "127.0.0.1", 0);
  std::printf("  server: listening on %s\n", server.address().to_string().c_str());

  auto [a, b, c] = co_await weft::gather(client(server.port(), 1, 5), client(server.port(), 2, 5),
                                         client(server.port(), 3, 5));
  std::printf("  clients: %d, %d and %d of 5 lines echoed\n", a, b, c);

  server.close();                 // stop accepting
  co_await server.wait_closed();  // every handler has finished
  std::printf("  server: closed\n");
  co_return (a == 5 && b == 5 && c == 5) ? 0 : 1;
}

}  // namespace

int run() {
  const int status = weft::run(async_main());
  return check(status == 0, "every line comes back from the echo server") ? 0 : 1;
}

}  // namespace examples::echo

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::echo::run(); }
#endif
