// A child process of the harness (QEMU, an adapter), started so that it cannot outlive it.
//
// Promises: no child outlives the harness. Every child is started by one long-lived launcher
// thread with PR_SET_PDEATHSIG(SIGKILL) (the signal fires when the *thread* that forked exits,
// so it must be a thread that never does); the child re-checks its parent after prctl (the
// harness may have died in between), closes every descriptor but its stdin, stdout and stderr,
// and starts with an empty signal mask and default dispositions, as the leader of its own process
// group. stop() (also run by the destructor) SIGTERMs, waits, SIGKILLs, waits, each within a
// bound, and reaps; the signals go to the whole group while the child is unreaped (so a
// `sh -c CMD` wrapper and CMD both get them), and to the child through a pidfd where the kernel
// has one, so a reused pid is never hit. A child that could not be executed (not found, not
// executable) makes spawn() fail with the reason; one that exits is reported with its exit status
// or signal and the tail of its stderr.
//
// Limits: when the harness dies, the parent-death signal reaches the child only, not processes it
// started in turn (dash does not exec the last command of `sh -c`); and the child's own process
// group means a terminal's Ctrl-C reaches the harness, not the child (which then dies with it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reference/base/result.h"

namespace vmem::conformance {

class ChildProcess {
 public:
  struct Options {
    // argv[0] a path or a name looked up in PATH.
    std::vector<std::string> argv;
    // dup2'ed to the child's stdin when >= 0 (else /dev/null).
    int stdin_fd = -1;
    // dup2'ed to the child's stdout when >= 0 (else the stderr file).
    int stdout_fd = -1;
    // stderr always goes to a file in a private temp dir, so failures can quote its tail.
  };

  // Starts the child; the caller keeps (and closes) stdin_fd and stdout_fd. Fails with the
  // reason (not found in PATH, exec's errno) and leaves no process behind.
  static Result<std::unique_ptr<ChildProcess>> spawn(const Options& options);

  // stop() with the default grace, then removes the stderr file.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The argument vector as executed: argv[0] resolved to a path.
  const std::vector<std::string>& argv() const { return argv_; }
  // Readable once the child has exited, for callers that poll it with other descriptors; -1
  // without pidfd support or once the child is reaped (then poll running()).
  int exit_fd() const { return pidfd_; }

  // Reaps the child if it has exited; true while it has not.
  bool running();
  // Waits up to `bound` for the child to exit; true when it has.
  bool wait_exit(std::chrono::milliseconds bound);
  // "exited with status 1", "was killed by signal 9 (Killed)", or "is still running".
  std::string state();
  // The last `max_bytes` of its stderr (and of its stdout without stdout_fd), from a line start.
  std::string stderr_tail(std::size_t max_bytes = 2048) const;
  // For error messages: "(pid N) exited with status 3; its stderr ends:\n...".
  std::string describe();

  // SIGTERM, wait up to `grace`, SIGKILL, wait again, reap. Idempotent. Fails only when the
  // process could not be reaped even after SIGKILL (then it is reported, not leaked silently).
  Status stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  ChildProcess() = default;
  void record_exit(int wait_status);

  pid_t pid_ = -1;
  int pidfd_ = -1;  // -1 when the kernel has no pidfd_open: waits then poll waitpid
  std::optional<int> wait_status_;
  std::string dir_;
  std::string stderr_path_;
  std::vector<std::string> argv_;
};

// A private directory for a child's files: mkdtemp of `prefix`-XXXXXX under TMPDIR when that is
// short (socket paths must fit in sun_path) and has no comma (QEMU's option syntax), else /tmp.
Result<std::string> make_private_dir(const std::string& prefix);

// The harness's own view of /proc: whether `pid` exists and is not a zombie. For tests that check
// that no child is left behind.
bool process_alive(pid_t pid);

// The program `binary` names: itself when it holds a '/', else the first regular, executable
// file of that name on PATH (/usr/local/bin:/usr/bin:/bin when PATH is unset).
Result<std::string> resolve_binary(const std::string& binary);

// Quotes one argument for a POSIX shell when it needs it.
std::string shell_quote(const std::string& arg);
// The arguments shell-quoted and joined with spaces.
std::string shell_join(const std::vector<std::string>& args);

}  // namespace vmem::conformance
