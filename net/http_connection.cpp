// net/http_connection.cpp: the life of one server connection: heads with their deadlines, the
// handler (cancelled if the client goes away), the response, pipelining, bodies both ways.
#include "http_connection.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>

#include <weft/net/http/serializer.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/spawn.hpp>

#include "http_date.hpp"

namespace weft::http::detail {

namespace {

// The first read buffer; it grows while a head needs it (bounded by the parser's head limit)
// and to body_read_size for bodies. Small, so that an idle keep-alive connection costs little.
constexpr std::size_t initial_buffer = 4096;
constexpr std::size_t body_read_size = 16 * 1024;
// Responses up to this size are copied into the pipelined batch; larger bodies are written
// straight from the response.
constexpr std::size_t copy_body_limit = 16 * 1024;
// A batch is written once it holds this much, whatever the pipeline depth.
constexpr std::size_t batch_bytes = 64 * 1024;
// After an error response: how long and how much the connection reads and drops before it
// closes, so that the client's unread bytes do not make the kernel reset the connection before
// the client has read the answer.
constexpr auto linger_time = std::chrono::milliseconds(1000);
constexpr std::size_t linger_bytes = 256 * 1024;
// What the watcher may hold from a client that pipelines while its handler runs.
constexpr std::size_t watch_limit = 64 * 1024;

constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";

bool bodiless_status(int status) { return status < 200 || status == 204 || status == 304; }

}  // namespace

connection::connection(server_state& state, connection_record& record, std::unique_ptr<transport> t,
                       clock::time_point accepted)
    : state_(state),
      record_(record),
      transport_(std::move(t)),
      accepted_(accepted),
      parser_(state.options.limits) {}

void connection::mark_idle(bool idle) noexcept {
  // Ordering: seq_cst store, paired with shutdown's seq_cst store of `draining` and load of
  // `idle` (connection_record::idle has the argument).
  record_.idle.store(idle, std::memory_order_seq_cst);
}

void connection::forget_descriptor() noexcept {
  std::lock_guard lock(state_.mutex);
  record_.fd = -1;
}

void connection::ensure_room(std::size_t min_free) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > 0 && cap_ - end_ < min_free) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (cap_ - end_ >= min_free) return;
  const std::size_t cap = std::max({cap_ * 2, end_ + min_free, initial_buffer});
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  if (end_ > begin_) std::memcpy(bigger.get(), buf_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  buf_ = std::move(bigger);
  cap_ = cap;
}

task<std::size_t> connection::read_more(clock::time_point deadline, std::size_t min_free) {
  if (!pending_.empty()) {  // what the watcher read comes first
    ensure_room(pending_.size());
    std::memcpy(buf_.get() + end_, pending_.data(), pending_.size());
    end_ += pending_.size();
    const std::size_t n = pending_.size();
    pending_.clear();
    co_return n;
  }
  ensure_room(min_free);
  const std::size_t n = co_await weft::timeout_at(
      deadline, transport_->read_some(std::span<char>(buf_.get() + end_, cap_ - end_)));
  end_ += n;
  co_return n;
}

task<void> connection::write_now(std::string_view data) {
  try {
    co_await weft::timeout(state_.options.write_timeout, transport_->write_all(data));
  } catch (...) {
    broken_ = true;
    throw;
  }
}

task<void> connection::flush() {
  if (out_.empty()) co_return;
  co_await write_now(out_);
  out_.clear();
  batched_ = 0;
}

clock::time_point connection::body_deadline() const noexcept {
  const auto& o = state_.options;
  if (o.min_body_rate == 0) return clock::time_point::max();
  // The body must have arrived at min_body_rate on average since the grace period ended: the
  // next byte is due when the bytes so far plus one would be on time.
  const double seconds =
      static_cast<double>(body_received_ + 1) / static_cast<double>(o.min_body_rate);
  const auto allowance = std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(std::min(seconds, 1e9)));
  return body_start_ + o.body_rate_grace + allowance;
}

task<connection::head_result> connection::read_head(request& req, bool first) {
  // The first request's head is due header_timeout after the accept; a later one's after its
  // first byte, and until that byte comes the connection is idle (keep_alive_timeout).
  bool got_byte = begin_ != end_ || !pending_.empty();
  clock::time_point deadline =
      first
          ? accepted_ + state_.options.header_timeout
          : weft::now() + (got_byte ? state_.options.header_timeout
                                    : std::chrono::milliseconds(state_.options.keep_alive_timeout));
  if (got_byte) mark_idle(false);
  for (;;) {
    const std::string_view bytes = unconsumed();
    parse_step step = parser_.parse(bytes);
    switch (step.event) {
      case parse_event::need_more: {
        begin_ += step.consumed;
        co_await flush();  // the batch goes out before waiting for the client
        if (!got_byte) {
          mark_idle(true);
          // Ordering: after the seq_cst store of idle (mark_idle); see connection_record.
          if (state_.draining.load(std::memory_order_seq_cst)) co_return head_result::closed;
        }
        std::size_t n = 0;
        try {
          n = co_await read_more(deadline, 1024);
        } catch (const timeout_error&) {
          // Idle too long, or a head too slow (slowloris): close without an answer, as nginx.
          co_return head_result::closed;
        } catch (const cancelled_error&) {
          throw;
        } catch (const std::exception&) {
          // Between requests, a read that fails is the end of the connection, not a break in a
          // message: a reset, or (TLS) an end without close_notify, which is also how an idle
          // TLS connection sees graceful shutdown's half-close of its socket.
          if (got_byte) throw;
          co_return head_result::closed;
        }
        if (n == 0) {
          // The end of the stream: between requests a clean end; in a head, nothing to answer.
          co_return head_result::closed;
        }
        if (!got_byte) {
          got_byte = true;
          if (!first) deadline = weft::now() + state_.options.header_timeout;
          mark_idle(false);
        }
        break;
      }
      case parse_event::head: {
        const request_head& head = parser_.head();
        const char* base = bytes.data();
        req.head_bytes_.assign(base, step.consumed);
        const char* copy = req.head_bytes_.data();
        auto rebase = [&](std::string_view v) {
          return v.empty() ? std::string_view{}
                           : std::string_view(copy + (v.data() - base), v.size());
        };
        req.method = rebase(head.method);
        req.target = rebase(head.target);
        const std::size_t q = req.target.find('?');
        req.path = q == std::string_view::npos ? req.target : req.target.substr(0, q);
        req.query = q == std::string_view::npos ? std::string_view{} : req.target.substr(q + 1);
        req.version = head.version;
        req.keep_alive = head.keep_alive;
        req.headers.clear();
        req.headers.reserve(head.headers.size());
        for (const header& h : head.headers)
          req.headers.push_back({rebase(h.name), rebase(h.value)});
        req.peer = transport_->peer_address();
        begin_ += step.consumed;
        body_received_ = end_ - begin_;
        body_start_ = weft::now();
        expect_continue_ = head.expect_continue;
        continue_sent_ = false;
        body_done_ = false;
        req.body.conn_ = this;
        req.body.done_ = false;
        if (head.framing == body_framing::none) {
          const parse_step end = parser_.parse(unconsumed());  // `complete`, consuming nothing
          begin_ += end.consumed;
          body_done_ = true;
          req.body.done_ = true;
        }
        co_return head_result::request;
      }
      case parse_event::error:
        co_await answer_error(status_of(parser_.error()));
        co_return head_result::error;
      case parse_event::body:
      case parse_event::complete:
      case parse_event::closed:
        // Not reported before a head; treated as a protocol error rather than trusted.
        co_await answer_error(400);
        co_return head_result::error;
    }
  }
}

task<std::string_view> connection::read_body() {
  if (body_done_) co_return std::string_view{};
  for (;;) {
    const parse_step step = parser_.parse(unconsumed());
    switch (step.event) {
      case parse_event::body:
        begin_ += step.consumed;
        if (step.data.empty()) break;
        co_return step.data;
      case parse_event::complete:
        begin_ += step.consumed;
        body_done_ = true;
        co_return std::string_view{};
      case parse_event::need_more: {
        begin_ += step.consumed;
        if (expect_continue_ && !continue_sent_) {
          continue_sent_ = true;
          co_await flush();
          co_await write_now(continue_line);
        }
        std::size_t n = 0;
        try {
          n = co_await read_more(body_deadline(), body_read_size);
        } catch (const timeout_error&) {
          close_after_ = linger_ = true;
          throw;
        }
        body_received_ += n;
        if (n == 0) {
          close_after_ = linger_ = true;
          const parse_step end = parser_.finish();
          throw bad_message(end.event == parse_event::error ? parser_.error()
                                                            : parse_error::truncated);
        }
        break;
      }
      case parse_event::error:
        close_after_ = linger_ = true;
        throw bad_message(parser_.error());
      case parse_event::head:
      case parse_event::closed:
        close_after_ = true;
        throw bad_message(parse_error::truncated);
    }
  }
}

bool connection::drain_buffered_body() {
  // The handler left (part of) the body unread: drop what is buffered; if the body is not all
  // here, the connection cannot be reused (reading the rest could take any time).
  while (!body_done_) {
    const parse_step step = parser_.parse(unconsumed());
    if (step.event == parse_event::body) {
      begin_ += step.consumed;
    } else if (step.event == parse_event::complete) {
      begin_ += step.consumed;
      body_done_ = true;
    } else {
      begin_ += step.event == parse_event::need_more ? step.consumed : 0;
      return false;
    }
  }
  return true;
}

task<void> connection::write_body(std::string_view data, bool chunked) {
  if (data.empty()) co_return;
  if (chunked) {
    write_chunk(out_, data);
    co_await flush();
  } else {
    co_await write_now(data);
  }
}

task<void> connection::answer_error(int status) {
  try {
    std::string body = std::to_string(status) + " " + std::string(reason_phrase(status)) + "\n";
    const header fields[] = {
        {"Content-Type", "text/plain"}, {"Connection", "close"}, {"Date", http_date_now()}};
    const std::size_t count = state_.options.date_header ? 3 : 2;
    write_response_head(out_, {status}, std::span<const header>(fields, count),
                        framing::content_length(body.size()));
    out_ += body;
    co_await flush();
  } catch (...) {
    broken_ = true;  // the client is gone or does not read: nothing more to say
  }
  close_after_ = true;
  linger_ = true;
}

task<void> connection::watch(const join_handle<response>* handler) {
  std::array<char, 4096> scratch{};
  try {
    while (pending_.size() < watch_limit) {
      const std::size_t n = co_await transport_->read_some(scratch);
      if (n == 0) break;
      pending_.append(scratch.data(), n);
    }
    if (pending_.size() >= watch_limit) co_return;  // a pipeline flood: stop reading, not gone
  } catch (const cancelled_error&) {
    co_return;  // the handler finished first
  } catch (const std::exception&) {
    // A reset: the client is gone as surely as with an end of stream.
  }
  client_gone_ = true;
  handler->cancel();
}

task<void> connection::respond(request& req, response& resp, clock::time_point started) {
  const bool head_only = req.method == "HEAD";
  // An HTTP/1.0 client knows no chunked coding: a streamed body of unknown length ends with
  // the connection.
  const bool until_close = resp.stream && !resp.stream_length.has_value() &&
                           req.version == version::http_1_0 && !bodiless_status(resp.status);
  const bool keep = req.keep_alive && !close_after_ && !until_close &&
                    !state_.draining.load(std::memory_order_relaxed);
  if (!keep) close_after_ = true;

  // Views of the handler's fields, plus the framing the server adds.
  std::array<header, 24> small;
  std::vector<header> large;
  std::span<header> fields;
  const std::size_t count = resp.headers.size() + 2;
  if (count <= small.size()) {
    fields = std::span<header>(small.data(), count);
  } else {
    large.resize(count);
    fields = large;
  }
  std::size_t n = 0;
  bool has_date = !state_.options.date_header;
  for (const field& f : resp.headers) {
    fields[n++] = {f.name, f.value};
    has_date = has_date || iequals(f.name, "Date");
  }
  // A view of this thread's cached text: used by write_response_head below, before any co_await.
  if (!has_date) fields[n++] = {"Date", http_date_now()};
  if (!keep) {
    fields[n++] = {"Connection", "close"};
  } else if (req.version == version::http_1_0) {
    fields[n++] = {"Connection", "keep-alive"};
  }
  const std::span<const header> used(fields.data(), n);

  std::uint64_t sent = 0;
  const status_line line{resp.status, {}, version::http_1_1};
  if (bodiless_status(resp.status)) {
    write_response_head(out_, line, used, framing::none());
  } else if (resp.stream) {
    const bool chunked = !resp.stream_length.has_value();
    if (until_close) {
      write_response_head(out_, line, used, framing::until_close());
      body_writer writer(this, false);
      co_await flush();
      if (!head_only) co_await resp.stream(writer);
      sent = writer.written();
    } else {
      write_response_head(
          out_, line, used,
          chunked ? framing::chunked() : framing::content_length(*resp.stream_length));
      co_await flush();
      body_writer writer(this, chunked);
      if (!head_only) {
        co_await resp.stream(writer);
        if (chunked) {
          write_last_chunk(out_);
          co_await flush();
        } else if (writer.written() != *resp.stream_length) {
          broken_ = true;  // the framing is a lie now: the connection cannot go on
          throw std::runtime_error("weft::http::server: a streamed body of " +
                                   std::to_string(writer.written()) + " bytes, " +
                                   std::to_string(*resp.stream_length) + " announced");
        }
      }
      sent = writer.written();
    }
  } else if (resp.file_body) {
    write_response_head(out_, line, used, framing::content_length(resp.file_length));
    if (!head_only && resp.file_length > 0) {
      co_await flush();
      // In pieces, each within write_timeout: a large file to a slow but live client goes on.
      constexpr std::uint64_t piece = std::uint64_t{4} << 20;
      for (std::uint64_t done = 0; done < resp.file_length;) {
        const std::uint64_t part = std::min(piece, resp.file_length - done);
        try {
          co_await weft::timeout(
              state_.options.write_timeout,
              transport_->send_file(*resp.file_body, resp.file_offset + done, part));
        } catch (...) {
          broken_ = true;  // part of the body is out: the framing cannot be kept
          throw;
        }
        done += part;
      }
      sent = resp.file_length;
    }
  } else {
    write_response_head(out_, line, used, framing::content_length(resp.body.size()));
    if (!head_only) {
      if (resp.body.size() <= copy_body_limit) {
        out_ += resp.body;
      } else {
        co_await flush();
        co_await write_now(resp.body);
      }
      sent = resp.body.size();
    }
  }
  ++batched_;
  if (close_after_ || batched_ >= state_.options.max_pipeline_depth || out_.size() >= batch_bytes)
    co_await flush();
  if (state_.options.access_log) {
    access_log_entry entry;
    entry.method = req.method;
    entry.target = req.target;
    entry.peer = &req.peer;
    entry.status = resp.status;
    entry.body_bytes = sent;
    entry.duration = weft::now() - started;
    state_.options.access_log(entry);
  }
}

task<void> connection::finish_shutdown() {
  try {
    co_await weft::timeout(state_.options.write_timeout, transport_->finish_shutdown());
  } catch (const cancelled_error&) {
    throw;
  } catch (const std::exception&) {
    broken_ = true;  // the peer does not take the goodbye: close at once
  }
}

task<void> connection::linger() {
  // The answer is out: half-close, then drop what the client still sends for a moment.
  if (!transport_->shutdown_write()) co_await finish_shutdown();
  if (broken_) co_return;
  std::array<char, 4096> scratch{};
  std::size_t dropped = 0;
  try {
    const clock::time_point until = weft::now() + linger_time;
    while (dropped < linger_bytes) {
      const std::size_t n = co_await weft::timeout_at(until, transport_->read_some(scratch));
      if (n == 0) break;
      dropped += n;
    }
  } catch (const cancelled_error&) {
    throw;
  } catch (const std::exception&) {
    // Timed out or reset: close now.
  }
}

task<void> connection::run() {
  bool first = true;
  bool cancelled = false;
  bool goodbye = false;  // the connection ends between requests: end the stream cleanly
  try {
    for (;;) {
      request req;
      const head_result got = co_await read_head(req, first);
      first = false;
      if (got == head_result::closed) goodbye = true;
      if (got != head_result::request) break;
      const clock::time_point started = weft::now();
      const bool watchable = body_done_ || (parser_.head().framing == body_framing::length &&
                                            end_ - begin_ >= parser_.head().content_length);

      // The handler, started at once on this worker: one that finishes without suspending (the
      // usual case) costs no scheduling and needs no watcher.
      response resp;
      std::exception_ptr failure;
      client_gone_ = false;
      join_handle<response> handler = weft::spawn_eager(state_.h(req));
      if (!handler.done() && watchable && pending_.empty()) {
        auto watcher = weft::spawn([this, &handler]() { return watch(&handler); });
        try {
          resp = co_await handler;
        } catch (...) {
          failure = std::current_exception();
        }
        watcher.cancel();
        co_await watcher;  // watch() ends normally, whatever happened
      } else {
        try {
          resp = co_await handler;
        } catch (...) {
          failure = std::current_exception();
        }
      }
      if (client_gone_) break;
      if (failure) {
        int status = 500;
        try {
          std::rethrow_exception(failure);
        } catch (const bad_message& e) {
          status = e.status();
        } catch (const timeout_error&) {
          if (broken_) throw;
          status = close_after_ ? 408 : 500;  // a body too slow is the client's fault
        } catch (const cancelled_error&) {
          throw;  // this connection is being cancelled (shutdown's deadline)
        } catch (const std::exception& e) {
          if (broken_) throw;
          weft::detail::report_to_log(weft::detail::current_runtime_core(),
                                      "weft::http::server: the handler of " +
                                          std::string(req.method) + " " + std::string(req.target) +
                                          " failed: " + e.what());
        }
        resp = response::text(
            status, std::to_string(status) + " " + std::string(reason_phrase(status)) + "\n");
      }
      if (!drain_buffered_body()) close_after_ = linger_ = true;
      co_await respond(req, resp, started);
      if (close_after_) break;
    }
    co_await flush();
    if ((close_after_ || goodbye) && !linger_ && !transport_->shutdown_write())
      co_await finish_shutdown();
  } catch (const cancelled_error&) {
    cancelled = true;
  } catch (const std::exception&) {
    broken_ = true;  // timed out writing, reset, or a handler's broken stream
  }
  // Lingering matters only where the client may still be sending (an error, an unread body):
  // closing with unread bytes would reset the connection under the answer.
  const bool linger_first = linger_ && !broken_ && !cancelled && !client_gone_;
  if (linger_first) {
    try {
      co_await linger();
    } catch (...) {
    }
  }
  forget_descriptor();
  transport_->close();
}

}  // namespace weft::http::detail
