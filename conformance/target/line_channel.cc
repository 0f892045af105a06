#include "conformance/target/line_channel.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace vmem::conformance {

namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, rounded up so poll() never wakes a hair too early.
int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, INT_MAX));
}

void set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// A line as error messages quote it: long payloads (b64write) cut short.
std::string excerpt(std::string_view line) {
  constexpr std::size_t kMax = 120;
  if (line.size() <= kMax) return std::string(line);
  return fmt::format("{}... ({} bytes)", line.substr(0, kMax), line.size());
}

// write() to a pipe whose reader has gone raises SIGPIPE, whose default action kills the
// harness. Sockets have MSG_NOSIGNAL; for pipes the signal is blocked in this thread for the
// write and a SIGPIPE it caused is consumed before the mask is restored.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size, bool is_socket) {
  if (is_socket) return ::send(fd, data, size, MSG_NOSIGNAL);
  sigset_t pipe_set;
  sigset_t old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  const ssize_t written = ::write(fd, data, size);
  const int saved_errno = errno;
  if (written < 0 && saved_errno == EPIPE && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved_errno;
  return written;
}

}  // namespace

LineChannel::LineChannel(int read_fd, int write_fd, Options options)
    : read_fd_(read_fd), write_fd_(write_fd), options_(std::move(options)) {
  set_nonblocking(read_fd_);
  if (write_fd_ != read_fd_) set_nonblocking(write_fd_);
  struct stat st {};
  write_is_socket_ = fstat(write_fd_, &st) == 0 && S_ISSOCK(st.st_mode);
}

LineChannel::~LineChannel() {
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
}

Error LineChannel::fail(std::string reason) {
  if (!failure_) failure_ = fmt::format("{}: {}", options_.name, reason);
  return Error{*failure_};
}

Error LineChannel::broken() const {
  return Error{fmt::format("{} (the connection has been unusable since)", *failure_)};
}

Status LineChannel::check_line(std::string_view line) const {
  if (line.find_first_of("\r\n") != std::string_view::npos) {
    return unexpected(Error{fmt::format("{}: refusing to send a line with a line break in it: '{}'",
                                        options_.name, excerpt(line))});
  }
  return ok();
}

void LineChannel::record_reply(std::string_view prefix, std::string_view line) {
  if (options_.record_replies) transcript_.push_back(fmt::format("# {}{}", prefix, line));
}

std::vector<std::string> LineChannel::take_transcript() {
  std::vector<std::string> out;
  out.swap(transcript_);
  return out;
}

Status LineChannel::read_ready() {
  char chunk[64 * 1024];
  const ssize_t got = ::read(read_fd_, chunk, sizeof chunk);
  if (got > 0) {
    buf_.append(chunk, static_cast<std::size_t>(got));
    return ok();
  }
  if (got == 0) {
    peer_closed_ = true;
    const std::size_t partial = buf_.size() - pos_;
    return unexpected(fail(
        partial == 0
            ? std::string("the peer closed the connection")
            : fmt::format("the peer closed the connection after {} bytes of an unfinished line",
                          partial)));
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ok();
  if (errno == ECONNRESET) {
    peer_closed_ = true;
    return unexpected(fail("the peer closed the connection (reset)"));
  }
  return unexpected(fail(fmt::format("read failed: {}", std::strerror(errno))));
}

Result<bool> LineChannel::fill(Clock::time_point deadline) {
  for (;;) {
    pollfd p{read_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return unexpected(fail(fmt::format("poll failed: {}", std::strerror(errno))));
    }
    if (ready == 0) return false;
    const std::size_t before = buf_.size();
    VMEM_TRY(read_ready());
    if (buf_.size() > before) return true;
    // A wake-up without data (EAGAIN): wait again unless the deadline has passed.
    if (remaining_ms(deadline) == 0) return false;
  }
}

Result<std::optional<std::string>> LineChannel::take_buffered_line() {
  const std::size_t nl = buf_.find('\n', pos_ + scanned_);
  if (nl == std::string::npos) {
    scanned_ = buf_.size() - pos_;
    if (scanned_ > options_.max_line) {
      return unexpected(fail(fmt::format("a line longer than {} bytes", options_.max_line)));
    }
    return std::optional<std::string>();
  }
  std::size_t len = nl - pos_;
  if (len > 0 && buf_[nl - 1] == '\r') --len;  // QMP ends its lines in "\r\n"
  if (len > options_.max_line) {
    return unexpected(fail(fmt::format("a line longer than {} bytes", options_.max_line)));
  }
  std::string line = buf_.substr(pos_, len);
  pos_ = nl + 1;
  scanned_ = 0;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (std::size_t{1} << 20) && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<std::string>(std::move(line));
}

Result<std::string> LineChannel::next_reply(Clock::time_point deadline) {
  for (;;) {
    auto line = take_buffered_line();
    if (!line.has_value()) return unexpected(line.error());
    if (line->has_value()) {
      std::string& text = **line;
      record_reply("< ", text);
      if (async_ && async_(text)) continue;
      return std::move(text);
    }
    auto got = fill(deadline);
    if (!got.has_value()) return unexpected(got.error());
    if (!*got) {
      return unexpected(fail(fmt::format("no reply within {} ms", options_.timeout.count())));
    }
  }
}

Status LineChannel::write_all(std::string_view data) {
  auto deadline = Clock::now() + options_.timeout;
  std::size_t done = 0;
  while (done < data.size()) {
    pollfd fds[2] = {{write_fd_, POLLOUT, 0}, {read_fd_, POLLIN, 0}};
    nfds_t count = 2;
    if (read_fd_ == write_fd_) {
      fds[0].events |= POLLIN;
      count = 1;
    }
    const int ms = remaining_ms(deadline);
    if (ms == 0) {
      return unexpected(fail(fmt::format("could not write for {} ms (the peer is not reading)",
                                         options_.timeout.count())));
    }
    const int ready = ::poll(fds, count, ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return unexpected(fail(fmt::format("poll failed: {}", std::strerror(errno))));
    }
    if (ready == 0) continue;
    // Take in what the peer sends meanwhile: a peer blocked on writing its replies to us would
    // otherwise stop reading, and both sides would wait for each other.
    const short read_events = count == 1 ? fds[0].revents : fds[1].revents;
    if ((read_events & (POLLIN | POLLHUP | POLLERR)) != 0) {
      VMEM_TRY(read_ready());
    }
    if ((fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) == 0) continue;
    const ssize_t written =
        write_no_sigpipe(write_fd_, data.data() + done, data.size() - done, write_is_socket_);
    if (written < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) {
        peer_closed_ = true;
        return unexpected(fail("the peer closed the connection while a line was being sent"));
      }
      return unexpected(fail(fmt::format("write failed: {}", std::strerror(errno))));
    }
    done += static_cast<std::size_t>(written);
    deadline = Clock::now() + options_.timeout;
  }
  return ok();
}

Status LineChannel::send(std::string_view line) {
  if (failure_) return unexpected(broken());
  VMEM_TRY(check_line(line));
  transcript_.push_back(options_.transcript_prefix + std::string(line));
  std::string data(line);
  data.push_back('\n');
  return write_all(data);
}

Result<std::string> LineChannel::read_line() {
  if (failure_) return unexpected(broken());
  return next_reply(Clock::now() + options_.timeout);
}

Result<std::string> LineChannel::call(std::string_view line) {
  VMEM_TRY(send(line));
  auto reply = next_reply(Clock::now() + options_.timeout);
  if (!reply.has_value()) {
    return unexpected(Error{fmt::format("{} (sent '{}')", reply.error().message, excerpt(line))});
  }
  return reply;
}

Status LineChannel::pipeline(std::span<const std::string> lines) {
  if (failure_) return unexpected(broken());
  if (lines.empty()) return ok();
  std::string data;
  std::size_t total = 0;
  for (const std::string& line : lines) {
    VMEM_TRY(check_line(line));
    total += line.size() + 1;
  }
  data.reserve(total);
  for (const std::string& line : lines) {
    transcript_.push_back(options_.transcript_prefix + line);
    data += line;
    data.push_back('\n');
  }
  VMEM_TRY(write_all(data));
  std::optional<std::string> first_bad;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto reply = next_reply(Clock::now() + options_.timeout);
    if (!reply.has_value()) {
      return unexpected(
          Error{fmt::format("{} (line {} of a pipeline of {}: '{}')", reply.error().message, i + 1,
                            lines.size(), excerpt(lines[i]))});
    }
    if (*reply != "OK" && !first_bad) {
      first_bad =
          fmt::format("{}: '{}' was answered '{}' (line {} of a pipeline of {})", options_.name,
                      excerpt(lines[i]), excerpt(*reply), i + 1, lines.size());
    }
  }
  if (first_bad) return unexpected(Error{*first_bad});
  return ok();
}

Result<bool> LineChannel::wait_until(const std::function<bool()>& done,
                                     std::chrono::milliseconds bound) {
  if (failure_) return unexpected(broken());
  const auto deadline = Clock::now() + bound;
  for (;;) {
    if (done()) return true;
    auto line = take_buffered_line();
    if (!line.has_value()) return unexpected(line.error());
    if (line->has_value()) {
      const std::string& text = **line;
      record_reply("< ", text);
      if (async_ && async_(text)) continue;
      return unexpected(fail(fmt::format("sent '{}' when nothing was asked", excerpt(text))));
    }
    auto got = fill(deadline);
    if (!got.has_value()) return unexpected(got.error());
    if (!*got) return done();
  }
}

Status LineChannel::drain_async() {
  if (failure_) return unexpected(broken());
  for (;;) {
    auto line = take_buffered_line();
    if (!line.has_value()) return unexpected(line.error());
    if (line->has_value()) {
      const std::string& text = **line;
      record_reply("< ", text);
      if (async_ && async_(text)) continue;
      return unexpected(fail(fmt::format("sent '{}' when nothing was asked", excerpt(text))));
    }
    auto got = fill(Clock::now());
    if (!got.has_value()) return unexpected(got.error());
    if (!*got) return ok();
  }
}

}  // namespace vmem::conformance
