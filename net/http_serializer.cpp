// net/http_serializer.cpp: writes request and response heads and chunked framing.
//
// Everything is validated before anything is appended, so a rejected call leaves `out` as it was.
#include <weft/net/http/serializer.hpp>

#include <charconv>
#include <stdexcept>
#include <string>

namespace weft::http {

namespace {

bool is_token_char(char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

[[noreturn]] void reject(std::string_view what, std::string_view text) {
  throw std::invalid_argument("weft::http: cannot serialize " + std::string(what) + " \"" +
                              std::string(text.substr(0, 64)) + "\"");
}

void check_token(std::string_view what, std::string_view text) {
  if (text.empty()) reject(what, text);
  for (char c : text)
    if (!is_token_char(c)) reject(what, text);
}

void check_fields(std::span<const header> fields, bool trailers) {
  for (const header& h : fields) {
    check_token("header name", h.name);
    for (char c : h.value)
      if (!is_value_char(c)) reject("header value of " + std::string(h.name), h.value);
    if (iequals(h.name, "content-length") || iequals(h.name, "transfer-encoding"))
      reject(trailers ? "framing header in trailers" : "framing header (the serializer writes it)",
             h.name);
  }
}

void append_number(std::string& out, std::uint64_t n, int base = 10) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, n, base);
  out.append(digits, result.ptr);
}

std::string_view version_text(version v) noexcept {
  return v == version::http_1_0 ? "HTTP/1.0" : "HTTP/1.1";
}

void append_fields_and_framing(std::string& out, std::span<const header> headers, framing body) {
  for (const header& h : headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (body.kind == body_framing::length) {
    out += "Content-Length: ";
    append_number(out, body.length);
    out += "\r\n";
  } else if (body.kind == body_framing::chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += "\r\n";
}

}  // namespace

void write_request_head(std::string& out, const request_line& line, std::span<const header> headers,
                        framing body) {
  check_token("method", line.method);
  if (line.target.empty()) reject("request target", line.target);
  for (char c : line.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) reject("request target", line.target);
  }
  check_fields(headers, false);
  if (body.kind == body_framing::close) reject("request framing", "until_close");
  if (body.kind == body_framing::chunked && line.version == version::http_1_0)
    reject("chunked framing in", "HTTP/1.0");
  out += line.method;
  out += ' ';
  out += line.target;
  out += ' ';
  out += version_text(line.version);
  out += "\r\n";
  append_fields_and_framing(out, headers, body);
}

void write_response_head(std::string& out, const status_line& line, std::span<const header> headers,
                         framing body) {
  if (line.status < 100 || line.status > 599) reject("status", std::to_string(line.status));
  for (char c : line.reason)
    if (!is_value_char(c)) reject("reason phrase", line.reason);
  check_fields(headers, false);
  // RFC 9110 8.6 and 6.4.1: 1xx and 204 carry neither Content-Length nor a body.
  if ((line.status < 200 || line.status == 204) && body.kind != body_framing::none)
    reject("body framing on status", std::to_string(line.status));
  if (body.kind == body_framing::chunked && line.version == version::http_1_0)
    reject("chunked framing in", "HTTP/1.0");
  out += version_text(line.version);
  out += ' ';
  append_number(out, static_cast<std::uint64_t>(line.status));
  out += ' ';
  out += line.reason.empty() ? reason_phrase(line.status) : line.reason;
  out += "\r\n";
  append_fields_and_framing(out, headers, body);
}

void write_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  append_number(out, data.size(), 16);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

void write_last_chunk(std::string& out, std::span<const header> trailers) {
  check_fields(trailers, true);
  out += "0\r\n";
  for (const header& h : trailers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

}  // namespace weft::http
