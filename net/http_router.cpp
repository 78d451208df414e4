// net/http_router.cpp: weft::http::router: routes tried in order, `{name}` segments captured.
#include <weft/net/http/router.hpp>

#include <stdexcept>

namespace weft::http {

namespace {

// A pattern segment: a literal or a parameter name.
struct segment {
  std::string text;
  bool parameter = false;
};

std::vector<segment> split_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("weft::http::router: a pattern starts with '/': \"" +
                                std::string(pattern) + "\"");
  }
  std::vector<segment> out;
  std::size_t at = 1;
  while (at <= pattern.size()) {
    std::size_t end = pattern.find('/', at);
    if (end == std::string_view::npos) end = pattern.size();
    std::string_view part = pattern.substr(at, end - at);
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      out.push_back({std::string(part.substr(1, part.size() - 2)), true});
    } else {
      out.push_back({std::string(part), false});
    }
    at = end + 1;
  }
  return out;
}

// Matches `path` against `pattern`, appending the parameters to `params` (left as they were on
// a mismatch).
bool match(const std::vector<segment>& pattern, std::string_view path,
           std::vector<std::pair<std::string_view, std::string_view>>& params) {
  if (path.empty() || path.front() != '/') return false;
  const std::size_t before = params.size();
  std::size_t at = 1;
  for (const segment& seg : pattern) {
    if (at > path.size()) {
      params.resize(before);
      return false;
    }
    std::size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(at, end - at);
    if (seg.parameter) {
      if (part.empty()) {
        params.resize(before);
        return false;
      }
      params.emplace_back(seg.text, part);
    } else if (part != seg.text) {
      params.resize(before);
      return false;
    }
    at = end + 1;
  }
  if (at <= path.size()) {  // segments left over
    params.resize(before);
    return false;
  }
  return true;
}

response bad_escape() { return response::text(400, "a malformed percent-escape in the path\n"); }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool decode_params(request& req) {
  // Nothing to do (the usual case) costs one scan of the parameters and no allocation.
  std::size_t escaped = 0;
  for (const auto& [name, value] : req.params)
    if (value.find('%') != std::string_view::npos) escaped += value.size();
  if (escaped == 0) return true;
  // Decoding only shrinks: reserving the escaped values' total keeps the views below valid.
  req.decoded_.clear();
  req.decoded_.reserve(escaped);
  for (auto& [name, value] : req.params) {
    if (value.find('%') == std::string_view::npos) continue;
    const std::size_t start = req.decoded_.size();
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] != '%') {
        req.decoded_.push_back(value[i]);
        continue;
      }
      if (i + 2 >= value.size()) return false;  // "%" or "%4" at the end
      const int high = hex_value(value[i + 1]);
      const int low = hex_value(value[i + 2]);
      if (high < 0 || low < 0) return false;
      req.decoded_.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
    value = std::string_view(req.decoded_.data() + start, req.decoded_.size() - start);
  }
  return true;
}

struct router::table {
  struct entry {
    std::string method;
    std::vector<segment> pattern;
    handler h;
  };
  std::vector<entry> routes;
};

router::router() : table_(std::make_shared<table>()) {}

router& router::route(std::string method, std::string_view pattern, handler h) {
  if (!h) throw std::invalid_argument("weft::http::router: an empty handler for " + method);
  table_->routes.push_back({std::move(method), split_pattern(pattern), std::move(h)});
  return *this;
}

task<response> router::operator()(request& req) const {
  std::string allow;
  const table::entry* fallback = nullptr;  // a GET route for a HEAD request
  for (const table::entry& e : table_->routes) {
    if (!match(e.pattern, req.path, req.params)) continue;
    if (e.method == req.method) {
      if (!decode_params(req)) break;
      co_return co_await e.h(req);
    }
    if (req.method == "HEAD" && e.method == "GET" && fallback == nullptr) {
      fallback = &e;
      req.params.clear();
      continue;
    }
    req.params.clear();
    if (allow.find(e.method) == std::string::npos) {
      if (!allow.empty()) allow += ", ";
      allow += e.method;
    }
  }
  if (!req.params.empty()) co_return bad_escape();  // the break above
  if (fallback != nullptr) {
    req.params.clear();
    match(fallback->pattern, req.path, req.params);
    if (!decode_params(req)) co_return bad_escape();
    co_return co_await fallback->h(req);
  }
  if (!allow.empty()) {
    response r = response::text(405, "method not allowed\n");
    r.header("Allow", std::move(allow));
    co_return r;
  }
  co_return response::text(404, "not found\n");
}

}  // namespace weft::http
