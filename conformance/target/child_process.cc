#include "conformance/target/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

extern char** environ;

namespace vmem::conformance {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, INT_MAX));
}

// --- The launcher thread ---------------------------------------------------------------------

// Everything the child needs, prepared before fork(): between fork and exec the child of a
// multi-threaded process may only make async-signal-safe calls, so no allocation happens there.
struct SpawnJob {
  const char* path = nullptr;
  char* const* argv = nullptr;
  int fds[3] = {-1, -1, -1};  // become the child's stdin, stdout and stderr
  // Results.
  pid_t pid = -1;
  int exec_errno = 0;
  bool done = false;
};

// The one thread that forks every child. PR_SET_PDEATHSIG sends its signal when the thread that
// forked the child exits, not the process, so forking from a short-lived thread (or from a test
// thread) would kill the child early or, worse, not at all after a later re-parenting. This
// thread is never joined and never exits; it dies with the process, which is exactly when every
// child must.
class Launcher {
 public:
  static Launcher& get() {
    static std::mutex creation;
    static Launcher* instance = nullptr;
    std::lock_guard lock(creation);
    // A forked copy of the harness has no launcher thread (fork copies only the calling thread),
    // so it gets its own. The old object is leaked on purpose: its thread may still use it.
    if (instance == nullptr || instance->owner_ != getpid()) instance = new Launcher();
    return *instance;
  }

  void spawn(SpawnJob& job) {
    std::unique_lock lock(mutex_);
    queue_.push_back(&job);
    wake_.notify_all();
    done_.wait(lock, [&] { return job.done; });
  }

 private:
  Launcher() : owner_(getpid()) {
    std::thread([this] { run(); }).detach();
  }

  [[noreturn]] void run() {
    for (;;) {
      SpawnJob* job = nullptr;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      fork_exec(*job);
      std::lock_guard lock(mutex_);
      job->done = true;
      done_.notify_all();
    }
  }

  static void fork_exec(SpawnJob& job) {
    // exec failures come back through a close-on-exec pipe: EOF means exec succeeded.
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
      job.exec_errno = errno;
      return;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The harness may have died between fork() and prctl(); then nobody would kill us.
      if (getppid() != parent) _exit(127);
      // Its own process group, so that stop() reaches what it starts in turn (`sh -c CMD`).
      setpgid(0, 0);
      // Move the sources above 2 first, so that no dup2 below overwrites one still to be used
      // (a harness with its own stdin closed may hand out descriptor 0).
      int src[3];
      for (int i = 0; i < 3; ++i) {
        src[i] = job.fds[i] >= 3 ? job.fds[i] : fcntl(job.fds[i], F_DUPFD, 3);
      }
      for (int i = 0; i < 3; ++i) {
        if (src[i] < 0 || dup2(src[i], i) < 0) _exit(127);
      }
      // A signal mask and ignored signals survive exec (handlers do not); the child should start
      // from the defaults. SIGKILL and SIGSTOP merely fail.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int sig = 1; sig < NSIG; ++sig)
        sigaction(sig, &dfl, nullptr);
      // Descriptors the harness opened without O_CLOEXEC (other children's sockets and pipes
      // among them) must not leak into this child, or their peers would never see EOF. The report
      // pipe is close-on-exec.
      const auto keep = static_cast<unsigned>(report[1]);
      bool closed = false;
#ifdef SYS_close_range
      closed = (keep <= 3 || syscall(SYS_close_range, 3U, keep - 1, 0U) == 0) &&
               syscall(SYS_close_range, keep + 1, ~0U, 0U) == 0;
#endif
      if (!closed) {
        for (int fd = 3; fd < 4096; ++fd) {
          if (fd != report[1]) close(fd);
        }
      }
      execve(job.path, job.argv, environ);
      const int err = errno;
      [[maybe_unused]] ssize_t n = write(report[1], &err, sizeof err);
      _exit(127);
    }
    const int fork_errno = errno;
    close(report[1]);
    if (pid < 0) {
      close(report[0]);
      job.exec_errno = fork_errno;
      return;
    }
    job.pid = pid;
    int err = 0;
    ssize_t got = 0;
    do {
      got = read(report[0], &err, sizeof err);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == static_cast<ssize_t>(sizeof err)) job.exec_errno = err;
  }

  pid_t owner_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<SpawnJob*> queue_;
};

// --- Helpers -----------------------------------------------------------------------------------

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

// --- Free functions ----------------------------------------------------------------------------

Result<std::string> resolve_binary(const std::string& binary) {
  if (binary.empty()) return unexpected(Error{"no program given"});
  if (binary.find('/') != std::string::npos) {
    if (access(binary.c_str(), X_OK) != 0) {
      return unexpected(Error{fmt::format("'{}': {}", binary, std::strerror(errno))});
    }
    return binary;
  }
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    std::string candidate = dir;
    candidate += "/";
    candidate += binary;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return unexpected(Error{fmt::format("'{}' not found in PATH ({})", binary, path)});
}

Result<std::string> make_private_dir(const std::string& prefix) {
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && tmp[0] == '/') {
    const std::string t = tmp;
    if (t.size() < 60 && t.find(',') == std::string::npos) base = t;
  }
  std::string templ = fmt::format("{}/{}-XXXXXX", base, prefix);
  if (mkdtemp(templ.data()) == nullptr) {
    return unexpected(
        Error{fmt::format("cannot create a directory under {}: {}", base, std::strerror(errno))});
  }
  return templ;
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() &&
      arg.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            "_@%+=:,./-") == std::string::npos) {
    return arg;
  }
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string shell_join(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) {
    if (!out.empty()) out.push_back(' ');
    out += shell_quote(a);
  }
  return out;
}

bool process_alive(pid_t pid) {
  std::ifstream stat_file(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!stat_file || !std::getline(stat_file, text)) return false;
  // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
  const std::size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return false;
  const char state = text[paren + 2];
  return state != 'Z' && state != 'X';
}

// --- ChildProcess ------------------------------------------------------------------------------

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const Options& options) {
  if (options.argv.empty()) return unexpected(Error{"cannot start a process: no argv given"});
  auto binary = resolve_binary(options.argv[0]);
  if (!binary.has_value()) return unexpected(binary.error());
  auto dir = make_private_dir("vmemcheck-child");
  if (!dir.has_value()) return unexpected(dir.error());

  // From here on the destructor cleans up whatever exists: process, file, directory.
  std::unique_ptr<ChildProcess> p(new ChildProcess());
  p->dir_ = *dir;
  p->stderr_path_ = p->dir_ + "/stderr";
  p->argv_ = options.argv;
  p->argv_[0] = *binary;

  const int stderr_fd =
      open(p->stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int devnull_fd = options.stdin_fd >= 0 ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stderr_fd < 0 || (options.stdin_fd < 0 && devnull_fd < 0)) {
    const int err = errno;
    if (stderr_fd >= 0) close(stderr_fd);
    if (devnull_fd >= 0) close(devnull_fd);
    return unexpected(
        Error{fmt::format("cannot open {}: {}", p->stderr_path_, std::strerror(err))});
  }
  std::vector<char*> argv;
  for (std::string& a : p->argv_)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  SpawnJob job;
  job.path = p->argv_[0].c_str();
  job.argv = argv.data();
  job.fds[0] = options.stdin_fd >= 0 ? options.stdin_fd : devnull_fd;
  job.fds[1] = options.stdout_fd >= 0 ? options.stdout_fd : stderr_fd;
  job.fds[2] = stderr_fd;
  Launcher::get().spawn(job);
  close(stderr_fd);
  if (devnull_fd >= 0) close(devnull_fd);
  if (job.pid < 0) {
    return unexpected(
        Error{fmt::format("cannot start {}: {}", p->argv_[0], std::strerror(job.exec_errno))});
  }
  p->pid_ = job.pid;
  p->pidfd_ = open_pidfd(job.pid);
  if (job.exec_errno != 0) {
    // The child exits at once; the destructor reaps it.
    return unexpected(
        Error{fmt::format("cannot execute {}: {}", p->argv_[0], std::strerror(job.exec_errno))});
  }
  return p;
}

ChildProcess::~ChildProcess() {
  [[maybe_unused]] auto stopped = stop();
  if (pidfd_ >= 0) close(pidfd_);
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
  if (!dir_.empty()) rmdir(dir_.c_str());
}

void ChildProcess::record_exit(int wait_status) {
  wait_status_ = wait_status;
  if (pidfd_ >= 0) {
    close(pidfd_);
    pidfd_ = -1;
  }
}

bool ChildProcess::running() {
  if (pid_ < 0 || wait_status_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) {
    record_exit(status);
  } else {
    // ECHILD: reaped elsewhere (SIGCHLD set to SIG_IGN); the status is lost.
    record_exit(-1);
  }
  return false;
}

bool ChildProcess::wait_exit(std::chrono::milliseconds bound) {
  const auto deadline = Clock::now() + bound;
  for (;;) {
    if (!running()) return true;
    const int ms = remaining_ms(deadline);
    if (ms == 0) return false;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      poll(&p, 1, ms);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 5)));
    }
  }
}

std::string ChildProcess::state() {
  if (pid_ < 0) return "was never started";
  if (running()) return "is still running";
  const int s = *wait_status_;
  if (s == -1) return "has exited (status unknown)";
  if (WIFEXITED(s)) return fmt::format("exited with status {}", WEXITSTATUS(s));
  if (WIFSIGNALED(s)) {
    const char* name = strsignal(WTERMSIG(s));
    return fmt::format("was killed by signal {} ({}){}", WTERMSIG(s), name ? name : "?",
                       WCOREDUMP(s) ? ", core dumped" : "");
  }
  return fmt::format("ended with wait status {:#x}", s);
}

std::string ChildProcess::stderr_tail(std::size_t max_bytes) const {
  const int fd = open(stderr_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string out;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    const auto size = static_cast<std::size_t>(st.st_size);
    const std::size_t n = std::min(size, max_bytes);
    out.resize(n);
    const ssize_t got = pread(fd, out.data(), n, static_cast<off_t>(size - n));
    out.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    // Start at a line boundary when the tail cut one.
    if (n < size) {
      if (const std::size_t nl = out.find('\n'); nl != std::string::npos) out.erase(0, nl + 1);
    }
  }
  close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

std::string ChildProcess::describe() {
  const std::string tail = stderr_tail();
  return fmt::format(
      "(pid {}) {}{}", pid_, state(),
      tail.empty() ? std::string("; it wrote nothing to stderr") : "; its stderr ends:\n" + tail);
}

Status ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ < 0 || !running()) return ok();
  // The whole process group while its leader is unreaped (its pid, so also the group id, cannot
  // have been reused), then the child itself through the pidfd when there is one.
  auto signal_child = [&](int sig) {
    if (!running()) return;
    kill(-pid_, sig);
#ifdef SYS_pidfd_send_signal
    if (pidfd_ >= 0 && syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) == 0) return;
#endif
    if (running()) kill(pid_, sig);
  };
  signal_child(SIGTERM);
  if (wait_exit(grace)) return ok();
  signal_child(SIGKILL);
  if (wait_exit(std::chrono::milliseconds(5000))) return ok();
  return unexpected(Error{
      fmt::format("process {} (pid {}) did not exit within 5 s of SIGKILL (uninterruptible sleep?)",
                  argv_.empty() ? std::string("?") : argv_[0], pid_)});
}

}  // namespace vmem::conformance
