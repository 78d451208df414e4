// net/http_url.cpp: weft::http::url: splitting http(s) URLs and resolving redirect locations.
#include <weft/net/http/client.hpp>

#include <charconv>
#include <string>

namespace weft::http {

namespace {

[[noreturn]] void bad(std::string_view text, const char* why) {
  throw url_error("weft: bad URL '" + std::string(text) + "': " + why);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Removes "." and ".." segments of an absolute path (RFC 3986 5.2.4), keeping the query.
std::string normalize(std::string_view target) {
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view{} : target.substr(q);
  std::vector<std::string_view> segments;
  std::size_t i = 1;  // after the leading '/'
  bool trailing = false;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    const std::string_view seg = path.substr(i, j - i);
    trailing = false;
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing = true;
    } else if (seg == ".") {
      trailing = true;
    } else {
      segments.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (std::string_view s : segments)
    out.append("/").append(s);
  if (out.empty() || trailing) out.push_back('/');
  out.append(query);
  return out;
}

}  // namespace

url url::parse(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      bad(text, "a space or control character");
  const std::size_t colon = text.find("://");
  if (colon == std::string_view::npos) bad(text, "no scheme (http:// or https://)");
  url u;
  u.scheme = lower(text.substr(0, colon));
  if (u.scheme != "http" && u.scheme != "https") bad(text, "the scheme is not http or https");
  std::string_view rest = text.substr(colon + 3);
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  const std::size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) bad(text, "user information is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) bad(text, "an IPv6 literal without ']'");
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad(text, "text after the IPv6 literal");
      port_text = after.substr(1);
    }
    if (u.host.find(':') == std::string::npos) bad(text, "brackets around a host that is not IPv6");
  } else {
    const std::size_t c = authority.rfind(':');
    u.host = lower(authority.substr(0, c));
    if (c != std::string_view::npos) port_text = authority.substr(c + 1);
    if (u.host.find_first_of("[]:") != std::string::npos)
      bad(text, "a bracket or colon in the host (an IPv6 literal needs brackets)");
  }
  if (u.host.empty()) bad(text, "no host");
  u.port = u.https() ? 443 : 80;
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || value == 0 ||
        value > 65535)
      bad(text, "a port that is not a number from 1 to 65535");
    u.port = static_cast<std::uint16_t>(value);
  }
  // (Built by append: GCC 12 warns falsely (-Wrestrict) about "/" + std::string.)
  u.target.clear();
  if (target.empty() || target.front() == '?') u.target.push_back('/');
  u.target.append(target);
  return u;
}

url url::resolve(std::string_view reference) const {
  // Absolute if a scheme ("https://") comes before any '/', '?' or '#': "/next?u=http://x" is a
  // path whose query holds a URL.
  const std::size_t scheme_end = reference.find("://");
  if (scheme_end != std::string_view::npos &&
      reference.substr(0, scheme_end).find_first_of("/?#") == std::string_view::npos)
    return parse(reference);
  if (reference.starts_with("//")) return parse(scheme + ":" + std::string(reference));
  url out = *this;
  if (const std::size_t hash = reference.find('#'); hash != std::string_view::npos)
    reference = reference.substr(0, hash);
  for (char c : reference)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw url_error("weft: bad redirect location '" + std::string(reference) + "'");
  if (reference.empty()) return out;
  if (reference.front() == '/') {
    out.target = normalize(reference);
  } else if (reference.front() == '?') {
    out.target = target.substr(0, target.find('?')) + std::string(reference);
  } else {
    std::string base = target.substr(0, target.find('?'));
    base = base.substr(0, base.rfind('/') + 1);
    out.target = normalize(base + std::string(reference));
  }
  return out;
}

std::string url::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (https() ? 443 : 80)) out.append(":").append(std::to_string(port));
  return out;
}

std::string url::origin() const { return scheme + "://" + authority(); }

}  // namespace weft::http
