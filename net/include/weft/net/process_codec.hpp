// weft/net/process_codec.hpp: how arguments and results of weft::process_pool calls cross between
// processes.
//
//   struct point { double x, y; };                       // a user type: two functions, found by
//   ADL void weft_encode(weft::byte_writer& out, const point& p) { out.put(p.x); out.put(p.y); }
//   point weft_decode(weft::byte_reader& in, std::type_identity<point>) {
//     return {in.get<double>(), in.get<double>()};
//   }
//
// Built in: arithmetic types, std::string, std::vector, std::pair and std::tuple of encodable
// types (nested freely). nlohmann::json comes from <weft/net/process_codec_json.hpp>, a separate
// header so that programs that do not use it need not have nlohmann-json installed. A type from
// another library (where ADL functions cannot be added) gets a specialization of weft::codec<T>
// with `static constexpr bool defined = true` and static encode/decode, as the json header does.
//
// The encoding is for two processes of the same program on the same machine: native byte order,
// no versioning. Decoding checks every length against the bytes that are left, so a truncated or
// corrupt message is a codec_error, never a read out of bounds or a huge allocation.
//
// Errors: an encoder or decoder that throws (any std::exception) fails only the call it serves;
// weft::process_pool rethrows it as weft::codec_error naming the function, the argument or result
// and its C++ type. A type with no codec at all is a compile-time error (weft::encodable).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft {

// A value could not be encoded or decoded: the message names the value's type and why.
class codec_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Appends the encoding of values to a std::string.
class byte_writer {
 public:
  explicit byte_writer(std::string& out) noexcept : out_(&out) {}

  void write(const void* data, std::size_t size) {
    out_->append(static_cast<const char*>(data), size);
  }
  // An arithmetic value, in native byte order.
  template <class T>
  requires std::is_arithmetic_v<T>
  void put(T value) {
    if constexpr (std::is_same_v<T, bool>) {
      const auto byte = static_cast<unsigned char>(value ? 1 : 0);
      write(&byte, 1);
    } else {
      write(&value, sizeof value);
    }
  }
  // Any encodable value (codec<T>).
  template <class T>
  void encode(const T& value);

 private:
  std::string* out_;
};

// Reads values back in the order they were written; throws codec_error on running out of bytes.
class byte_reader {
 public:
  explicit byte_reader(std::string_view in) noexcept : in_(in) {}

  void read(void* data, std::size_t size) {
    if (size > in_.size()) truncated(size);
    if (size != 0) std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
  }
  template <class T>
  requires std::is_arithmetic_v<T> T get() {
    if constexpr (std::is_same_v<T, bool>) {
      unsigned char byte = 0;
      read(&byte, 1);
      if (byte > 1) throw codec_error("a bool is encoded as " + std::to_string(byte));
      return byte == 1;
    } else {
      T value;
      read(&value, sizeof value);
      return value;
    }
  }
  // A length prefix that cannot exceed what is left at `min_bytes_each` bytes per element.
  std::size_t get_count(std::size_t min_bytes_each) {
    const auto count = get<std::uint64_t>();
    if (min_bytes_each != 0 && count > in_.size() / min_bytes_each) {
      throw codec_error("a length of " + std::to_string(count) + " exceeds the " +
                        std::to_string(in_.size()) + " bytes left in the message");
    }
    return static_cast<std::size_t>(count);
  }
  // The next `size` bytes, consumed.
  std::string_view take(std::size_t size) {
    if (size > in_.size()) truncated(size);
    auto part = in_.substr(0, size);
    in_.remove_prefix(size);
    return part;
  }
  template <class T>
  T decode();

  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size(); }

 private:
  [[noreturn]] void truncated(std::size_t size) const {
    throw codec_error("the message is truncated: " + std::to_string(size) + " more bytes needed, " +
                      std::to_string(in_.size()) + " left");
  }

  std::string_view in_;
};

// The customization point. The primary template serves user types through two functions found
// by argument-dependent lookup:
//   void weft_encode(weft::byte_writer&, const T&);
//   T weft_decode(weft::byte_reader&, std::type_identity<T>);
template <class T>
struct codec {
  static constexpr bool defined = requires(byte_writer & w, byte_reader& r, const T& v) {
    weft_encode(w, v);
    { weft_decode(r, std::type_identity<T>{}) } -> std::same_as<T>;
  };
  static void encode(byte_writer& out, const T& value) { weft_encode(out, value); }
  static T decode(byte_reader& in) { return weft_decode(in, std::type_identity<T>{}); }
};

// A type the codec can carry (built in, a weft_encode/weft_decode pair, or a codec<T>
// specialization).
template <class T>
concept encodable = codec<std::remove_cv_t<T>>::defined;

template <class T>
requires std::is_arithmetic_v<T>
struct codec<T> {
  static constexpr bool defined = true;
  static void encode(byte_writer& out, T value) { out.put(value); }
  static T decode(byte_reader& in) { return in.get<T>(); }
};

template <>
struct codec<std::string> {
  static constexpr bool defined = true;
  static void encode(byte_writer& out, const std::string& value) {
    out.put(static_cast<std::uint64_t>(value.size()));
    out.write(value.data(), value.size());
  }
  static std::string decode(byte_reader& in) { return std::string(in.take(in.get_count(1))); }
};

template <class T>
struct codec<std::vector<T>> {
  static constexpr bool defined = encodable<T>;
  static void encode(byte_writer& out, const std::vector<T>& value) {
    out.put(static_cast<std::uint64_t>(value.size()));
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      out.write(value.data(), value.size() * sizeof(T));
    } else {
      for (const auto& element : value)
        codec<T>::encode(out, element);
    }
  }
  static std::vector<T> decode(byte_reader& in) {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      std::vector<T> value(in.get_count(sizeof(T)));
      in.read(value.data(), value.size() * sizeof(T));
      return value;
    } else {
      // Every built-in element takes at least one byte, except an empty tuple: a length is
      // bounded by the bytes left either way, so corrupt input cannot ask for a huge vector.
      const std::size_t count = in.get_count(1);
      std::vector<T> value;
      value.reserve(count);
      for (std::size_t i = 0; i < count; ++i)
        value.push_back(codec<T>::decode(in));
      return value;
    }
  }
};

template <class... T>
struct codec<std::tuple<T...>> {
  static constexpr bool defined = (encodable<T> && ...);
  static void encode(byte_writer& out, const std::tuple<T...>& value) {
    std::apply([&out](const T&... element) { (codec<T>::encode(out, element), ...); }, value);
  }
  static std::tuple<T...> decode(byte_reader& in) {
    // Braced initialization evaluates left to right, the order the elements were written.
    return std::tuple<T...>{codec<T>::decode(in)...};
  }
};

template <class A, class B>
struct codec<std::pair<A, B>> {
  static constexpr bool defined = encodable<A> && encodable<B>;
  static void encode(byte_writer& out, const std::pair<A, B>& value) {
    codec<A>::encode(out, value.first);
    codec<B>::encode(out, value.second);
  }
  static std::pair<A, B> decode(byte_reader& in) {
    return std::pair<A, B>{codec<A>::decode(in), codec<B>::decode(in)};
  }
};

template <class T>
void byte_writer::encode(const T& value) {
  static_assert(encodable<T>, "weft: this type has no codec (see weft/net/process_codec.hpp)");
  codec<std::remove_cv_t<T>>::encode(*this, value);
}

template <class T>
T byte_reader::decode() {
  static_assert(encodable<T>, "weft: this type has no codec (see weft/net/process_codec.hpp)");
  return codec<std::remove_cv_t<T>>::decode(*this);
}

}  // namespace weft
