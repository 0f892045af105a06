#include "conformance/target/qemu_process.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace vmem::conformance {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, INT_MAX));
}

Result<int> listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return unexpected(Error{fmt::format("socket path too long: {}", path)});
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return unexpected(Error{fmt::format("socket: {}", std::strerror(errno))});
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1) != 0) {
    const int err = errno;
    close(fd);
    return unexpected(Error{fmt::format("listening on {}: {}", path, std::strerror(err))});
  }
  return fd;
}

// Two listening sockets, closed and unlinked when it goes.
struct Listeners {
  std::string paths[2];
  int fds[2] = {-1, -1};
  ~Listeners() {
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        close(fds[i]);
        unlink(paths[i].c_str());
      }
    }
  }
};

}  // namespace

Result<std::unique_ptr<QemuProcess>> QemuProcess::start(const Options& options) {
  auto dir = make_private_dir("vmemcheck-qemu");
  if (!dir.has_value()) return unexpected(dir.error());
  // From here on the destructors clean up whatever exists: process, sockets, directory.
  std::unique_ptr<QemuProcess> p(new QemuProcess());
  p->dir_ = *dir;
  Listeners listeners;
  listeners.paths[0] = p->dir_ + "/qtest.sock";
  listeners.paths[1] = p->dir_ + "/qmp.sock";
  for (int i = 0; i < 2; ++i) {
    auto fd = listen_unix(listeners.paths[i]);
    if (!fd.has_value()) return unexpected(fd.error());
    listeners.fds[i] = *fd;
  }

  ChildProcess::Options co;
  co.argv = {options.binary,
             "-qtest",
             "unix:" + listeners.paths[0],
             "-qtest-log",
             "/dev/null",
             "-chardev",
             "socket,path=" + listeners.paths[1] + ",id=qmp0",
             "-mon",
             "chardev=qmp0,mode=control"};
  co.argv.insert(co.argv.end(), options.args.begin(), options.args.end());
  auto child = ChildProcess::spawn(co);
  if (!child.has_value()) return unexpected(child.error());
  p->child_ = std::move(*child);

  // Accept both connections; QEMU makes them during its start-up, in either order.
  const auto deadline = Clock::now() + options.connect_timeout;
  int* slots[2] = {&p->qtest_fd_, &p->qmp_fd_};
  while (p->qtest_fd_ < 0 || p->qmp_fd_ < 0) {
    pollfd fds[3];
    nfds_t n = 0;
    int which[3];
    for (int i = 0; i < 2; ++i) {
      if (*slots[i] < 0) {
        which[n] = i;
        fds[n++] = {listeners.fds[i], POLLIN, 0};
      }
    }
    const int exit_fd = p->child_->exit_fd();
    if (exit_fd >= 0) {
      which[n] = -1;
      fds[n++] = {exit_fd, POLLIN, 0};
    }
    const int ms = remaining_ms(deadline);
    // Without a pidfd, wake up now and then to notice an early exit.
    const int ready = poll(fds, n, exit_fd >= 0 ? ms : std::min(ms, 20));
    if (ready < 0 && errno != EINTR) {
      return unexpected(Error{fmt::format("poll: {}", std::strerror(errno))});
    }
    if (!p->running()) {
      return unexpected(
          Error{fmt::format("QEMU ended before connecting to the harness: {}", p->describe())});
    }
    if (ready <= 0) {
      if (remaining_ms(deadline) == 0) {
        const std::string what = p->qtest_fd_ < 0 && p->qmp_fd_ < 0 ? "qtest and QMP"
                                 : p->qtest_fd_ < 0                 ? "qtest"
                                                                    : "QMP";
        return unexpected(
            Error{fmt::format("QEMU (pid {}) did not open its {} connection within {} ms; {}",
                              p->pid(), what, options.connect_timeout.count(), p->describe())});
      }
      continue;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (which[i] < 0 || (fds[i].revents & POLLIN) == 0) continue;
      const int fd = accept4(listeners.fds[which[i]], nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) *slots[which[i]] = fd;
    }
  }
  return p;
}

QemuProcess::~QemuProcess() {
  // The process first: its sockets then close on a QEMU that is gone.
  child_.reset();
  if (qtest_fd_ >= 0) close(qtest_fd_);
  if (qmp_fd_ >= 0) close(qmp_fd_);
  // Listeners unlink their sockets before this runs (they live in start()).
  if (!dir_.empty()) rmdir(dir_.c_str());
}

int QemuProcess::take_qtest_fd() {
  const int fd = qtest_fd_;
  qtest_fd_ = -1;
  return fd;
}

int QemuProcess::take_qmp_fd() {
  const int fd = qmp_fd_;
  qmp_fd_ = -1;
  return fd;
}

std::string QemuProcess::describe() {
  return "QEMU " + child_->describe();
}

}  // namespace vmem::conformance
