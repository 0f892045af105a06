// ChildProcess against small programs (sh, cat, sleep): exec failures, exit statuses, pipes,
// escalation to SIGKILL, and that no child outlives its owner or the harness.
#include "conformance/target/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conformance/target/tests/orphan_check.h"

extern char** environ;

namespace vmem::conformance {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::unique_ptr<ChildProcess> must_spawn(const ChildProcess::Options& o) {
  auto c = ChildProcess::spawn(o);
  if (!c.has_value()) {
    ADD_FAILURE() << "spawn: " << c.error().message;
    std::abort();
  }
  return std::move(*c);
}

ChildProcess::Options sh(std::string script) {
  ChildProcess::Options o;
  o.argv = {"sh", "-c", std::move(script)};
  return o;
}

// A pipe whose ends close with it.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  explicit Pipe(int flags = O_CLOEXEC) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, flags), 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (read_end >= 0) close(read_end);
    read_end = -1;
  }
  void close_write() {
    if (write_end >= 0) close(write_end);
    write_end = -1;
  }
};

// Reads from `fd` until EOF, `until` appears in what was read, or `bound` passes.
std::string read_for(int fd, milliseconds bound, std::string_view until = {}) {
  std::string out;
  const auto deadline = Clock::now() + bound;
  while (until.empty() || out.find(until) == std::string::npos) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Whether `fd` reaches EOF within `bound` (every writer gone), discarding what it reads.
bool eof_within(int fd, milliseconds bound) {
  const auto deadline = Clock::now() + bound;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return false;
  }
}

// One field of /proc/PID/status ("SigIgn", "PPid"), empty when absent.
std::string status_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name + ":")) {
      std::string value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return {};
}

TEST(ChildProcessTest, ExecFailuresAreReportedWithTheReason) {
  ChildProcess::Options o;
  auto c = ChildProcess::spawn(o);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message, HasSubstr("no argv"));

  o.argv = {"vmemcheck-no-such-program", "x"};
  c = ChildProcess::spawn(o);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message, HasSubstr("'vmemcheck-no-such-program' not found in PATH"));

  o.argv = {"/nonexistent/program"};
  c = ChildProcess::spawn(o);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message, HasSubstr("'/nonexistent/program': No such file or directory"));

  // Executable by its mode, but no format the kernel knows: execve itself fails (ENOEXEC).
  char dir[] = "/tmp/vmemcheck-child-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string junk = std::string(dir) + "/junk";
  {
    std::ofstream out(junk, std::ios::binary);
    out << std::string("\x01\x02\x03\x04 not a program\n", 19);
  }
  ASSERT_EQ(chmod(junk.c_str(), 0755), 0);
  o.argv = {junk};
  c = ChildProcess::spawn(o);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message, HasSubstr("cannot execute " + junk + ": Exec format error"));
  std::filesystem::remove_all(dir);
}

TEST(ChildProcessTest, ExitStatusSignalAndStderrTail) {
  auto c = must_spawn(sh("echo 'first line' >&2; echo oops >&2; exit 3"));
  EXPECT_GT(c->pid(), 0);
  EXPECT_THAT(c->argv().front(), ::testing::MatchesRegex("/.*/sh")) << "resolved in PATH";
  ASSERT_TRUE(c->wait_exit(milliseconds(5000)));
  EXPECT_FALSE(c->running());
  EXPECT_EQ(c->state(), "exited with status 3");
  EXPECT_EQ(c->stderr_tail(), "first line\noops");
  EXPECT_EQ(c->stderr_tail(6), "oops") << "cut at a line start";
  EXPECT_EQ(c->describe(), fmt::format("(pid {}) exited with status 3; its stderr ends:\n"
                                       "first line\noops",
                                       c->pid()));
  EXPECT_TRUE(c->stop().has_value()) << "stopping an exited child is fine";

  auto killed = must_spawn(sh("kill -9 $$"));
  ASSERT_TRUE(killed->wait_exit(milliseconds(5000)));
  EXPECT_EQ(killed->state(), "was killed by signal 9 (Killed)");
  EXPECT_THAT(killed->describe(), HasSubstr("it wrote nothing to stderr"));

  auto running = must_spawn({{"sleep", "30"}});
  EXPECT_TRUE(running->running());
  EXPECT_EQ(running->state(), "is still running");
  EXPECT_FALSE(running->wait_exit(milliseconds(50)));
}

TEST(ChildProcessTest, StdinAndStdoutPipes) {
  Pipe in, out;
  ChildProcess::Options o;
  o.argv = {"cat"};
  o.stdin_fd = in.read_end;
  o.stdout_fd = out.write_end;
  auto c = must_spawn(o);
  // The child has its own copies; the caller closes its ends.
  in.close_read();
  out.close_write();
  ASSERT_EQ(write(in.write_end, "hello\nworld\n", 12), 12);
  EXPECT_EQ(read_for(out.read_end, milliseconds(5000), "world\n"), "hello\nworld\n");
  in.close_write();  // EOF: cat exits
  EXPECT_TRUE(eof_within(out.read_end, milliseconds(5000))) << "cat exits at EOF";
  ASSERT_TRUE(c->wait_exit(milliseconds(5000)));
  EXPECT_EQ(c->state(), "exited with status 0");

  // Without descriptors: stdin is /dev/null (cat ends at once), stdout goes to the stderr file.
  auto d = must_spawn(sh("cat; echo to-stdout; echo to-stderr >&2"));
  ASSERT_TRUE(d->wait_exit(milliseconds(5000)));
  EXPECT_EQ(d->state(), "exited with status 0");
  EXPECT_EQ(d->stderr_tail(), "to-stdout\nto-stderr");
}

TEST(ChildProcessTest, StopEscalatesToSigkillForAChildIgnoringSigterm) {
  Pipe out;
  ChildProcess::Options o = sh("trap '' TERM; echo ready; sleep 30; echo survived");
  o.stdout_fd = out.write_end;
  auto c = must_spawn(o);
  out.close_write();
  // The trap is in place once "ready" is out.
  ASSERT_EQ(read_for(out.read_end, milliseconds(5000), "\n"), "ready\n");
  const auto t0 = Clock::now();
  EXPECT_TRUE(c->stop(milliseconds(300)).has_value());
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_EQ(c->state(), "was killed by signal 9 (Killed)");
  // sleep, the shell's own child, was in the group and got the SIGKILL too: the pipe's last
  // writer is gone.
  EXPECT_TRUE(eof_within(out.read_end, milliseconds(1000)));

  // A child that honours SIGTERM goes at once, and so does what it started.
  Pipe out2;
  ChildProcess::Options p = sh("sleep 30; echo survived");
  p.stdout_fd = out2.write_end;
  auto polite = must_spawn(p);
  out2.close_write();
  const auto t1 = Clock::now();
  EXPECT_TRUE(polite->stop().has_value());
  EXPECT_LT(Clock::now() - t1, milliseconds(1000));
  EXPECT_EQ(polite->state(), "was killed by signal 15 (Terminated)");
  EXPECT_TRUE(eof_within(out2.read_end, milliseconds(1000)));
}

TEST(ChildProcessTest, NoStrayDescriptorsAndDefaultSignals) {
  // A pipe without O_CLOEXEC: were its write end inherited, the read end would not see EOF.
  Pipe leaky(0);
  // Ignored signals survive exec; the child must start with none ignored.
  struct sigaction ignore {};
  struct sigaction old_pipe {};
  struct sigaction old_hup {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigaction(SIGHUP, &ignore, &old_hup);
  auto c = must_spawn({{"sleep", "30"}});
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  leaky.close_write();
  pollfd p{leaky.read_end, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "the child holds the harness's descriptor";
  char byte;
  EXPECT_EQ(read(leaky.read_end, &byte, 1), 0);
  EXPECT_EQ(status_field(c->pid(), "SigIgn"), "0000000000000000");
  EXPECT_EQ(status_field(c->pid(), "SigBlk"), "0000000000000000");
  EXPECT_EQ(status_field(c->pid(), "PPid"), std::to_string(getpid()));
  EXPECT_EQ(getpgid(c->pid()), c->pid()) << "its own process group";
}

TEST(ChildProcessTest, DestroyingTheOwnerLeavesNoProcess) {
  pid_t pid = -1;
  Pipe out;
  {
    ChildProcess::Options o = sh("echo ready; sleep 30");
    o.stdout_fd = out.write_end;
    auto c = must_spawn(o);
    out.close_write();
    ASSERT_EQ(read_for(out.read_end, milliseconds(5000), "\n"), "ready\n");
    pid = c->pid();
    EXPECT_TRUE(process_alive(pid));
  }
  EXPECT_FALSE(process_alive(pid)) << "killed and reaped by the destructor";
  EXPECT_TRUE(eof_within(out.read_end, milliseconds(1000))) << "and the sleep it started";
}

// The child half of the next test: spawns `sleep`, tells the parent its pid, and waits to be
// killed. Disabled so that it runs only when the parent asks for it.
TEST(ChildOrphanChild, DISABLED_HoldsAChildUntilKilled) {
  const char* path = std::getenv("VMEM_CHILD_ORPHAN_PID_FILE");
  if (path == nullptr) GTEST_SKIP() << "run by HarnessKilledLeavesNoChild";
  auto c = must_spawn({{"sleep", "30"}});
  test::publish_pid(path, c->pid());
  std::this_thread::sleep_for(std::chrono::seconds(30));
}

TEST(ChildProcessTest, HarnessKilledLeavesNoChild) {
  test::expect_no_orphan("VMEM_CHILD_ORPHAN_PID_FILE",
                         "ChildOrphanChild.DISABLED_HoldsAChildUntilKilled");
}

TEST(ChildProcessTest, ShellQuotingAndPrivateDirs) {
  EXPECT_EQ(shell_quote("virtio-mem-pci,id=vm0"), "virtio-mem-pci,id=vm0");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("exec:cat > /dev/null"), "'exec:cat > /dev/null'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_join({"qemu", "-m", "128M,maxmem=1G", "a b"}), "qemu -m 128M,maxmem=1G 'a b'");
  auto dir = make_private_dir("vmemcheck-test");
  ASSERT_TRUE(dir.has_value());
  EXPECT_THAT(*dir, HasSubstr("/vmemcheck-test-"));
  struct stat st {};
  ASSERT_EQ(stat(dir->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(rmdir(dir->c_str()), 0);
  EXPECT_TRUE(process_alive(getpid()));
  EXPECT_FALSE(process_alive(0x3fffffff));
}

}  // namespace
}  // namespace vmem::conformance
