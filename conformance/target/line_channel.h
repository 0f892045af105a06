// A line-oriented client over a connected pair of file descriptors: the transport under qtest,
// QMP and the adapter protocol. It sends one line, waits for the reply line, and routes the
// lines the peer sends on its own (qtest's "IRQ raise 21", QMP events) to a handler.
//
// Promises: no wait is unbounded (every poll() has a deadline derived from the timeout given at
// construction); a closed peer, a timeout, a read or write error and an over-long line are errors
// that say which, never a hang, a crash or a SIGPIPE. After such an error the channel is broken
// (a late reply would otherwise be taken for the answer to the next call) and every later call
// fails at once with the first reason. A reply the caller does not like ("FAIL ...") is not a
// channel error: the lines stay in step.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reference/base/result.h"

namespace vmem::conformance {

class LineChannel {
 public:
  struct Options {
    // Bound on each exchange. A call that keeps moving bytes (a long pipeline, a large transfer)
    // gets a fresh bound after each step of progress; asynchronous lines do not count as progress.
    std::chrono::milliseconds timeout{5000};
    // Longest line accepted from the peer, without its terminator.
    std::size_t max_line = std::size_t{16} << 20;
    // Names the peer in error messages ("qtest", "QMP", "adapter").
    std::string name = "peer";
    // Put in front of every sent line in the transcript, so a replay can tell channels apart.
    std::string transcript_prefix;
    // Also record replies and asynchronous lines, as comments ("# < OK 0x00ff").
    bool record_replies = false;
  };

  // Returns true when `line` was asynchronous (and has been handled), false when it is a reply.
  using AsyncHandler = std::function<bool(std::string_view line)>;

  // Takes ownership of both descriptors (they may be the same socket) and makes them
  // non-blocking.
  LineChannel(int read_fd, int write_fd, Options options);
  ~LineChannel();
  LineChannel(const LineChannel&) = delete;
  LineChannel& operator=(const LineChannel&) = delete;

  // Without a handler every line is a reply.
  void on_async(AsyncHandler handler) { async_ = std::move(handler); }

  // Sends `line` (no terminator; it must not contain '\n' or '\r') and returns the first reply
  // line that is not asynchronous, without its "\n" or "\r\n".
  Result<std::string> call(std::string_view line);

  // Sends all `lines` in one write, then reads one reply per line; every reply must be exactly
  // "OK". All replies are read even when one is not, so the channel stays in step; the error
  // names the first line that failed. About 100 times faster than one call() per line.
  Status pipeline(std::span<const std::string> lines);

  // The two halves of call(), for peers that speak first (QMP's greeting).
  Status send(std::string_view line);
  Result<std::string> read_line();

  // Reads and handles asynchronous lines until `done()` is true (checked first) or `bound` has
  // passed; returns whether `done()` became true. A reply line while waiting breaks the channel
  // (nothing was asked). An expired bound does not.
  Result<bool> wait_until(const std::function<bool()>& done, std::chrono::milliseconds bound);

  // Handles the asynchronous lines already received or readable now, without waiting.
  Status drain_async();

  bool healthy() const { return !failure_.has_value(); }
  // Whether the channel broke because the peer closed it (EOF, reset, EPIPE): a process behind
  // it is exiting, while after a timeout it is merely not answering.
  bool peer_closed() const { return peer_closed_; }
  // The reason the channel broke, empty while it is healthy.
  std::string failure() const { return failure_.value_or(""); }

  std::chrono::milliseconds timeout() const { return options_.timeout; }
  void set_timeout(std::chrono::milliseconds t) { options_.timeout = t; }
  const std::string& name() const { return options_.name; }

  // Adds a line of the caller's to the transcript (a directive for a replay, or a comment).
  void note(std::string line) { transcript_.push_back(std::move(line)); }
  // The lines sent (each with the transcript prefix) since the last call, and the replies when
  // Options::record_replies is set.
  std::vector<std::string> take_transcript();

 private:
  using Clock = std::chrono::steady_clock;

  Status check_line(std::string_view line) const;
  Status write_all(std::string_view data);
  // Reads whatever is available, waiting at most until `deadline`; false when nothing arrived in
  // time. EOF and errors break the channel.
  Result<bool> fill(Clock::time_point deadline);
  Status read_ready();
  // The next complete line in the buffer, if there is one; an over-long line breaks the channel.
  Result<std::optional<std::string>> take_buffered_line();
  Result<std::string> next_reply(Clock::time_point deadline);
  // Breaks the channel (the first reason sticks) and returns the error to hand back.
  Error fail(std::string reason);
  Error broken() const;
  void record_reply(std::string_view prefix, std::string_view line);

  int read_fd_;
  int write_fd_;
  bool write_is_socket_ = false;
  Options options_;
  AsyncHandler async_;
  std::string buf_;
  std::size_t pos_ = 0;      // first unconsumed byte of buf_
  std::size_t scanned_ = 0;  // bytes after pos_ known to hold no '\n'
  std::optional<std::string> failure_;
  bool peer_closed_ = false;
  std::vector<std::string> transcript_;
};

}  // namespace vmem::conformance
