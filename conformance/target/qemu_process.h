// One running QEMU, started with its qtest and QMP connections already accepted.
//
// The harness listens on two unix sockets in a private temporary directory, starts QEMU as a
// client of both (`-qtest unix:...`, `-chardev socket,path=...` + `-mon ...,mode=control`) and
// accepts each connection within a bound. QEMU's stdout and stderr go to a file, so a failure can
// quote their tail.
//
// Promises: no QEMU outlives the harness (ChildProcess: one long-lived launcher thread, parent
// death signal, SIGTERM then SIGKILL within bounds, reaped). A QEMU that exits early (bad
// arguments, a crash) is reported with its exit status and the tail of its stderr.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "conformance/target/child_process.h"
#include "reference/base/result.h"

namespace vmem::conformance {

class QemuProcess {
 public:
  struct Options {
    // A path, or a name looked up in PATH.
    std::string binary = "qemu-system-x86_64";
    // The machine's arguments; start() adds -qtest, -qtest-log, -chardev and -mon.
    std::vector<std::string> args;
    // From exec until both connections are accepted.
    std::chrono::milliseconds connect_timeout{10000};
  };

  // Starts QEMU and accepts both connections. Fails with the reason (binary not found, QEMU
  // exited with its stderr, no connection in time) and leaves no process behind.
  static Result<std::unique_ptr<QemuProcess>> start(const Options& options);

  // stop() with the default grace.
  ~QemuProcess();
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  pid_t pid() const { return child_->pid(); }
  // The full argument vector as executed (binary resolved) and as one shell-quoted line.
  const std::vector<std::string>& argv() const { return child_->argv(); }
  std::string command_line() const { return shell_join(argv()); }

  // The connected sockets; the caller takes ownership (each may be taken once, -1 after).
  int take_qtest_fd();
  int take_qmp_fd();

  // Reaps QEMU if it has exited; true while it has not.
  bool running() { return child_->running(); }
  // Waits up to `bound` for QEMU to exit; true when it has.
  bool wait_exit(std::chrono::milliseconds bound) { return child_->wait_exit(bound); }
  // "exited with status 1", "was killed by signal 9 (Killed)", or "is still running".
  std::string state() { return child_->state(); }
  // The last `max_bytes` of what QEMU wrote to stdout and stderr.
  std::string stderr_tail(std::size_t max_bytes = 2048) const {
    return child_->stderr_tail(max_bytes);
  }
  // For error messages: "QEMU (pid N) <state>; its stderr ends: ...".
  std::string describe();

  // SIGTERM, wait up to `grace`, SIGKILL, wait again, reap. Idempotent. Fails only when the
  // process could not be reaped even after SIGKILL (then it is reported, not leaked silently).
  Status stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) {
    return child_->stop(grace);
  }

 private:
  QemuProcess() = default;

  std::unique_ptr<ChildProcess> child_;
  std::string dir_;  // the sockets' directory
  int qtest_fd_ = -1;
  int qmp_fd_ = -1;
};

}  // namespace vmem::conformance
