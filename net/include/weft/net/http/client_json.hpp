// <weft/net/http/client_json.hpp>: JSON bodies for weft::http::client through nlohmann::json.
//
//   #include <weft/net/http/client_json.hpp>     // needs nlohmann-json (Debian:
//   nlohmann-json3-dev) nlohmann::json reply = co_await weft::http::post_json(session, url,
//   {{"name", "weft"}}); auto r = co_await session.get(url); nlohmann::json doc =
//   weft::http::json(r);
//
// Kept out of <weft/weft.hpp> (as process_codec_json.hpp) so that programs that never send JSON
// need not have nlohmann-json. A body that is not JSON throws nlohmann::json::parse_error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/net/http/client.hpp>

namespace weft::http {

// The body of a response, parsed.
inline nlohmann::json json(const client_response& r) { return nlohmann::json::parse(r.body); }

// A request whose body is `value` as JSON (Content-Type: application/json).
inline client_request json_request(std::string method, std::string url,
                                   const nlohmann::json& value) {
  client_request req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Accept", "application/json");
  req.body = value.dump();
  return req;
}

// POSTs `value` as JSON and returns the response parsed as JSON. A status other than 2xx is a
// client_error naming the status (its body is not parsed).
inline task<nlohmann::json> post_json(client& session, std::string url, nlohmann::json value) {
  client_response r = co_await session.request(json_request("POST", std::move(url), value));
  if (r.status < 200 || r.status > 299)
    throw client_error(std::make_error_code(std::errc::protocol_error),
                       "weft: POST " + r.url + ": status " + std::to_string(r.status));
  co_return json(r);
}

// GETs `url` and returns its body parsed as JSON (a non-2xx status is client_error, as above).
inline task<nlohmann::json> get_json(client& session, std::string url) {
  std::vector<field> headers;  // (not a braced list: GCC 12 rejects one inside a coroutine)
  headers.emplace_back("Accept", "application/json");
  client_response r = co_await session.get(std::move(url), std::move(headers));
  if (r.status < 200 || r.status > 299)
    throw client_error(std::make_error_code(std::errc::protocol_error),
                       "weft: GET " + r.url + ": status " + std::to_string(r.status));
  co_return json(r);
}

}  // namespace weft::http
