// <weft/net/http/router.hpp>: weft::http::router, a handler that dispatches on method and path.
//
//   weft::http::router routes;
//   routes.get("/", index);
//   routes.get("/users/{id}", show_user);             // req.param("id")
//   routes.route("PUT", "/users/{id}/name", rename);
//   auto srv = co_await weft::http::server::start(routes, "127.0.0.1", 8080);
//
// A pattern is a path of segments; a segment `{name}` matches any one non-empty segment and
// records it as a parameter (raw, not percent-decoded). Routes are tried in the order they were
// added; the first whose method and pattern match handles the request. A path that matches some
// route with another method is answered 405 with an `Allow` header; no match at all is 404.
// HEAD falls back to a GET route (the server sends the head without the body). A router is
// cheap to copy (its table is shared) and must not be changed while a server uses it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <weft/net/http/server.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::http {

class WEFT_API router {
 public:
  router();

  router& route(std::string method, std::string_view pattern, handler h);
  router& get(std::string_view pattern, handler h) { return route("GET", pattern, std::move(h)); }
  router& post(std::string_view pattern, handler h) { return route("POST", pattern, std::move(h)); }
  router& put(std::string_view pattern, handler h) { return route("PUT", pattern, std::move(h)); }
  router& del(std::string_view pattern, handler h) {
    return route("DELETE", pattern, std::move(h));
  }

  // Dispatches `req` (fills req.params), or answers 404/405.
  task<response> operator()(request& req) const;

  struct table;

 private:
  std::shared_ptr<table> table_;
};

}  // namespace weft::http
