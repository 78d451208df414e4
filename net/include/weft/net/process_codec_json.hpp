// weft/net/process_codec_json.hpp: nlohmann::json as an argument or result of a process_pool call.
//
//   #include <weft/net/process_codec_json.hpp>   // needs nlohmann-json (Debian:
//   nlohmann-json3-dev) WEFT_PROCESS_FUNCTION(summarize, [](const nlohmann::json& doc) { return
//   doc.size(); });
//
// Kept out of <weft/weft.hpp> so that programs that never send JSON need not have nlohmann-json.
// The value travels as its serialized text. A value nlohmann::json refuses to serialize (a string
// that is not valid UTF-8) or to parse fails only the call that carries it, with a
// weft::codec_error naming nlohmann::json and nlohmann's message.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <weft/net/process_codec.hpp>

namespace weft {

template <>
struct codec<nlohmann::json> {
  static constexpr bool defined = true;
  static void encode(byte_writer& out, const nlohmann::json& value) {
    const std::string text = value.dump();  // throws type_error 316 on invalid UTF-8
    out.put(static_cast<std::uint64_t>(text.size()));
    out.write(text.data(), text.size());
  }
  static nlohmann::json decode(byte_reader& in) {
    return nlohmann::json::parse(in.take(in.get_count(1)));
  }
};

}  // namespace weft
