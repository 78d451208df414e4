// net/http_connection.hpp: one HTTP/1.1 connection of weft::http::server: reads requests with
// the strict parser, runs the handler for each in turn, writes the responses in order.
//
// The read buffer: bytes [begin_, end_) of buf_ are received and not yet consumed by the parser.
// The parser keeps offsets while a head is incomplete, so the buffer may be compacted or grown
// before each read; views it hands out (the head, body pieces) point into consumed bytes, which
// stay where they are until the next read. The request copies its head before anything is read.
//
// Invariants: one task reads the transport at a time (the connection's, or the watcher that
// looks for the client going away while a handler runs; the connection awaits the watcher before
// it reads again), and one writes (the connection's, or the handler's body_writer, which the
// connection awaits). Responses leave in request order because requests are handled one by one.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include <weft/net/http/parser.hpp>
#include <weft/net/http/server.hpp>
#include <weft/scheduler/sleep.hpp>

#include "http_server_state.hpp"

namespace weft::http::detail {

class connection {
 public:
  connection(server_state& state, connection_record& record, std::unique_ptr<transport> t,
             clock::time_point accepted);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Serves requests until the connection ends; never throws.
  task<void> run();

  // For body_reader and body_writer.
  task<std::string_view> read_body();
  task<void> write_body(std::string_view data, bool chunked);

 private:
  enum class head_result { request, closed, error };
  task<head_result> read_head(request& req, bool first);
  task<void> respond(request& req, response& resp, clock::time_point started);
  task<void> answer_error(int status);
  task<std::size_t> read_more(clock::time_point deadline, std::size_t min_free);
  task<void> flush();
  task<void> write_now(std::string_view data);
  task<void> watch(const join_handle<response>* handler);
  task<void> linger();
  task<void> finish_shutdown();
  void ensure_room(std::size_t min_free);
  void mark_idle(bool idle) noexcept;
  bool drain_buffered_body();
  void forget_descriptor() noexcept;
  [[nodiscard]] std::string_view unconsumed() const noexcept {
    return {buf_.get() + begin_, end_ - begin_};
  }
  [[nodiscard]] clock::time_point body_deadline() const noexcept;

  server_state& state_;
  connection_record& record_;
  std::unique_ptr<transport> transport_;
  const clock::time_point accepted_;
  request_parser parser_;

  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;

  std::string out_;           // responses not yet written (a pipelined batch)
  std::size_t batched_ = 0;   // responses in out_
  std::string pending_;       // bytes the watcher read while a handler ran
  bool client_gone_ = false;  // the watcher saw the end of the stream or an error
  bool close_after_ = false;  // answer this request, then close
  bool broken_ = false;       // the transport failed: close at once, no linger
  bool linger_ = false;       // read and drop the client's bytes a moment before closing

  // The body of the current request.
  bool body_done_ = true;
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  clock::time_point body_start_{};
  std::uint64_t body_received_ = 0;
};

}  // namespace weft::http::detail
