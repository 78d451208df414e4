// examples/files.cpp: the seed guide's aiofiles section in weft: write a file, read it whole,
// append, and iterate its lines, without blocking a worker thread. Docs: docs/patterns/files.md.
//
//   async with aiofiles.open("notes.txt", "w") as f:      weft::file f = co_await weft::file::open(
//       await f.write(text)                                   path, weft::open_mode::write);
//                                                          co_await f.write(text);
//   async with aiofiles.open("notes.txt") as f:           co_await weft::read_file(path);
//       content = await f.read()
//   async for line in f: ...                              auto lines = weft::read_lines(path);
//                                                          while (auto line = co_await
//                                                          lines.next())

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::files {

namespace {

weft::task<bool> async_main(std::string path) {
  const char* backend =
      weft::default_file_backend() == weft::file_backend::io_uring ? "io_uring" : "threads";
  std::printf("file backend: %s\n", backend);

  // Write, then append (aiofiles.open(path, "w") and "a").
  {
    weft::file f = co_await weft::file::open(path, weft::open_mode::write);
    for (int i = 1; i <= 3; ++i)
      co_await f.write("note " + std::to_string(i) + "\n");
    co_await f.close();
  }
  {
    weft::file f = co_await weft::file::open(path, weft::open_mode::append);
    co_await f.write("note 4 (appended)\n");
    co_await f.close();
  }

  // Read it whole (await f.read()).
  const std::string content = co_await weft::read_file(path);
  std::printf("read %zu bytes\n", content.size());

  // Iterate the lines (async for line in f), here through a stream combinator.
  std::vector<std::string> notes = co_await weft::collect<std::vector<std::string>>(weft::filter(
      weft::read_lines(path), [](const std::string& l) { return l.starts_with("note"); }));
  for (const auto& n : notes)
    std::printf("  %s\n", n.c_str());

  // A missing file: a typed error naming the path and the reason.
  bool missing = false;
  try {
    (void)co_await weft::read_file(path + ".missing");
  } catch (const weft::file_not_found& e) {
    std::printf("as expected: %s\n", e.what());
    missing = true;
  }
  co_return check(content == "note 1\nnote 2\nnote 3\nnote 4 (appended)\n", "the content") &&
      check(notes.size() == 4, "four lines") && check(missing, "file_not_found");
}

}  // namespace

int run() {
  const std::string path = "/tmp/weft-example-files-" + std::to_string(::getpid()) + ".txt";
  const bool ok = weft::run(async_main(path));
  ::unlink(path.c_str());
  return ok ? 0 : 1;
}

}  // namespace examples::files

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::files::run(); }
#endif
