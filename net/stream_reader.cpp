// net/stream_reader.cpp: weft::stream_reader, asyncio's StreamReader over a stream socket.
//
// Invariant: the bytes [head_, tail_) of buffer_ are received and unread, and nothing else is
// ever dropped: every read first looks at the buffer and only then calls fill(), whose one
// suspension point (inside read_some) comes before any byte is taken from the kernel. A
// cancellation therefore always leaves the buffer as it was, plus whatever an earlier fill() of
// the same call had appended, which the next call finds.
#include <weft/net/streams.hpp>

#include <algorithm>
#include <cstring>
#include <span>

namespace weft {

namespace {
constexpr std::size_t min_read = 16 * 1024;
}

incomplete_read_error::incomplete_read_error(std::string partial, std::size_t expected)
    : std::runtime_error(
          "weft: the stream ended after " + std::to_string(partial.size()) +
          " bytes, before the expected " +
          (expected == 0 ? std::string("separator") : std::to_string(expected) + " bytes")),
      partial_(std::move(partial)),
      expected_(expected) {}

stream_reader::stream_reader(std::shared_ptr<stream_socket> socket, std::size_t limit)
    : socket_(std::move(socket)), limit_(limit) {}

std::string stream_reader::take(std::size_t n) {
  std::string result(buffer_.data() + head_, n);
  head_ += n;
  if (head_ == tail_) head_ = tail_ = 0;
  return result;
}

task<void> stream_reader::fill() {
  // Room for one more read: slide the unread bytes to the front when that frees enough, else
  // grow.
  if (buffer_.size() - tail_ < min_read) {
    if (head_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + head_, tail_ - head_);
      tail_ -= head_;
      head_ = 0;
    }
    if (buffer_.size() - tail_ < min_read)
      buffer_.resize(std::max(buffer_.size() * 2, tail_ + min_read));
  }
  const std::size_t n =
      co_await socket_->read_some(std::span<char>(buffer_.data() + tail_, buffer_.size() - tail_));
  if (n == 0) eof_ = true;
  tail_ += n;
}

task<std::string> stream_reader::read(std::size_t n) {
  if (n == 0) co_return std::string();
  if (head_ == tail_ && !eof_) co_await fill();
  co_return take(std::min(n, tail_ - head_));
}

task<std::string> stream_reader::read_all() {
  while (!eof_)
    co_await fill();
  co_return take(tail_ - head_);
}

task<std::string> stream_reader::read_exactly(std::size_t n) {
  while (tail_ - head_ < n) {
    if (eof_) throw incomplete_read_error(take(tail_ - head_), n);
    co_await fill();
  }
  co_return take(n);
}

task<std::string> stream_reader::read_until(std::string separator) {
  if (separator.empty()) throw std::invalid_argument("weft: read_until needs a separator");
  std::size_t searched = 0;  // the separator does not start before this offset from head_
  for (;;) {
    const std::string_view data(buffer_.data() + head_, tail_ - head_);
    const std::size_t at = data.find(separator, searched);
    if (at != std::string_view::npos) {
      const std::size_t end = at + separator.size();
      if (end > limit_) {
        throw stream_limit_error("weft: read_until: the separator was found after " +
                                     std::to_string(at) + " bytes, beyond the limit of " +
                                     std::to_string(limit_),
                                 at);
      }
      co_return take(end);
    }
    if (data.size() >= separator.size()) searched = data.size() - separator.size() + 1;
    if (data.size() > limit_) {
      throw stream_limit_error(
          "weft: read_until: no separator within the limit of " + std::to_string(limit_) + " bytes",
          data.size());
    }
    if (eof_) throw incomplete_read_error(take(data.size()), 0);
    co_await fill();
  }
}

task<std::string> stream_reader::read_line() {
  try {
    co_return co_await read_until("\n");
  } catch (incomplete_read_error& e) {
    co_return std::string(e.partial());
  } catch (const stream_limit_error& e) {
    // Drop the overlong line so that the next read_line starts after it (asyncio does the same).
    const std::string_view data(buffer_.data() + head_, tail_ - head_);
    const std::size_t newline = data.find('\n');
    take(newline == std::string_view::npos ? data.size() : newline + 1);
    throw;
  }
}

}  // namespace weft
