// examples/http_server.cpp: a small JSON API on weft::http::server, checked by a raw client.
// Docs: docs/patterns/http.md (the server) and docs/patterns/http-server-limits.md.
//
//   Python (aiohttp.web)                               weft
//   routes = web.RouteTableDef()                       weft::http::router routes;
//   @routes.get("/items/{id}")                         routes.get("/items/{id}", get_item);
//   async def get_item(request):                       weft::task<response> get_item(request& req)
//   {
//       item = items[request.match_info["id"]]           auto& item = items.at(req.param("id"));
//       return web.json_response(item)                   co_return json_response(200, item); }
//   app = web.Application(); app.add_routes(routes)
//   runner = web.AppRunner(app); await runner.setup()  auto srv = co_await
//   site = web.TCPSite(runner, "127.0.0.1", 0)             weft::http::server::start(routes,
//   await site.start()                                          "127.0.0.1", 0);
//   await runner.cleanup()                             co_await srv.shutdown(1s);
//
// The API keeps items in memory: POST /items (a JSON body) adds one, GET /items/{id} shows it,
// GET /items lists them. The program starts the server on a port the kernel picks, makes a few
// requests over a plain TCP connection (no HTTP client: the bytes are visible), checks the
// answers, and shuts the server down gracefully.
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>
#include <weft/weft.hpp>

#include "example_support.hpp"

using namespace std::chrono_literals;
using weft::http::request;
using weft::http::response;

namespace {

// Handlers run on any worker: the store takes a lock (held for no co_await).
struct store {
  std::mutex mutex;
  std::map<int, nlohmann::json> items;
  int next_id = 1;
};

response json_response(int status, const nlohmann::json& body) {
  return response::text(status, body.dump(), "application/json");
}

weft::http::router make_routes(store& db) {
  weft::http::router routes;
  routes.get("/items", [&db](request&) -> weft::task<response> {
    std::lock_guard lock(db.mutex);
    nlohmann::json all = nlohmann::json::array();
    for (const auto& [id, item] : db.items)
      all.push_back(item);
    co_return json_response(200, all);
  });
  routes.get("/items/{id}", [&db](request& req) -> weft::task<response> {
    std::lock_guard lock(db.mutex);
    const auto it = db.items.find(std::atoi(std::string(req.param("id")).c_str()));
    if (it == db.items.end()) co_return json_response(404, {{"error", "no such item"}});
    co_return json_response(200, it->second);
  });
  routes.post("/items", [&db](request& req) -> weft::task<response> {
    const std::string body = co_await req.body.read_all(64 * 1024);  // streamed as it arrives
    nlohmann::json item = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!item.is_object() || !item.contains("name")) {
      co_return json_response(400, {{"error", "expected {\"name\": ...}"}});
    }
    std::lock_guard lock(db.mutex);
    item["id"] = db.next_id++;
    db.items[item["id"]] = item;
    co_return json_response(201, item);
  });
  return routes;
}

// The raw client: one request, the whole answer (the server closes after `Connection: close`).
weft::task<std::string> ask(std::uint16_t port, std::string request_bytes) {
  auto conn = co_await weft::tcp_stream::connect("127.0.0.1", port);
  co_await conn.write_all(request_bytes);
  std::string answer;
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await conn.read_some(buffer);
    if (n == 0) break;
    answer.append(buffer.data(), n);
  }
  co_return answer;
}

std::string post(const std::string& path, const std::string& json) {
  return "POST " + path + " HTTP/1.1\r\nHost: example\r\nConnection: close\r\n" +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
         "\r\n\r\n" + json;
}

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n";
}

std::string body_of(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : answer.substr(at + 4);
}

weft::task<int> async_main() {
  store db;
  int logged = 0;
  weft::http::server_options options;
  options.access_log = [&logged](const weft::http::access_log_entry& e) {
    std::printf("  log: %.*s %.*s -> %d (%llu bytes)\n", static_cast<int>(e.method.size()),
                e.method.data(), static_cast<int>(e.target.size()), e.target.data(), e.status,
                static_cast<unsigned long long>(e.body_bytes));
    ++logged;
  };
  auto srv = co_await weft::http::server::start(make_routes(db), "127.0.0.1", 0, options);
  std::printf("  serving on %s\n", srv.address().to_string().c_str());
  const auto port = srv.port();

  bool ok = true;
  const std::string created = co_await ask(port, post("/items", R"({"name": "teapot"})"));
  ok &= examples::check(created.rfind("HTTP/1.1 201", 0) == 0, "POST /items answers 201");
  ok &= examples::check(nlohmann::json::parse(body_of(created))["id"] == 1, "the new item is 1");

  const std::string shown = co_await ask(port, get("/items/1"));
  ok &= examples::check(nlohmann::json::parse(body_of(shown))["name"] == "teapot",
                        "GET /items/1 shows it");

  const std::string missing = co_await ask(port, get("/items/9"));
  ok &= examples::check(missing.rfind("HTTP/1.1 404", 0) == 0, "an unknown item is 404");

  const std::string bad = co_await ask(port, post("/items", "not json"));
  ok &= examples::check(bad.rfind("HTTP/1.1 400", 0) == 0, "a bad body is 400");

  const std::string smuggle =
      co_await ask(port,
                   "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  ok &= examples::check(smuggle.rfind("HTTP/1.1 400", 0) == 0,
                        "Content-Length with Transfer-Encoding is 400");

  const std::string list = co_await ask(port, get("/items"));
  ok &= examples::check(nlohmann::json::parse(body_of(list)).size() == 1, "one item listed");

  co_await srv.shutdown(1s);  // stop accepting, finish what runs, close idle connections
  ok &= examples::check(logged == 5, "every answered request was logged");
  std::printf("  server: shut down\n");
  co_return ok ? 0 : 1;
}

}  // namespace

int main() { return weft::run(async_main()); }
