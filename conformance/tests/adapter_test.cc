// The adapter protocol is complete: the whole suite run through it (an in-process server on a
// socket pair, and the vmemcheck-adapter program) reaches the verdicts of the in-process run,
// and a golden transcript pins the protocol's lines.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "conformance/adapter/adapter_server.h"
#include "conformance/suite/checks.h"
#include "conformance/suite/runner.h"
#include "conformance/target/adapter_target.h"
#include "conformance/target/reference_target.h"

namespace vmem::conformance {
namespace {

const std::string kSource = VMEM_SOURCE_DIR;
const std::string kAdapter = VMEM_ADAPTER_PATH;

// An AdapterServer on one end of a socket pair, served by a thread until the peer hangs up.
class InProcessAdapter {
 public:
  explicit InProcessAdapter(Transport t) : target_({t, Profile::Spec, "", BackingKind::Anonymous}) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_fd_ = fds[0];
    thread_ = std::thread([this, fd = fds[1]] { serve(fd); });
  }
  ~InProcessAdapter() { thread_.join(); }
  int client_fd() const { return client_fd_; }

 private:
  void serve(int fd) {
    // Replies go out with MSG_NOSIGNAL: the client may hang up before the reply to its `quit`.
    FILE* in = fdopen(dup(fd), "r");
    AdapterServer server(target_);
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while (!server.done() && (n = getline(&line, &cap, in)) > 0) {
      std::string_view l(line, static_cast<size_t>(n));
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r'))
        l.remove_suffix(1);
      for (std::string out : server.handle(l)) {
        out += '\n';
        if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;
      }
    }
    free(line);
    fclose(in);
    close(fd);
  }

  ReferenceTarget target_;
  int client_fd_ = -1;
  std::thread thread_;
};

Report run(Target& t, std::vector<std::string> filters = {}) {
  RunOptions o;
  o.filters = std::move(filters);
  // Generous: the spec-profile reference answers every chain, so only a loaded machine waits.
  o.completion_timeout = std::chrono::milliseconds(5000);
  return run_suite(t, *embedded_catalog(), all_checks(), o);
}

void expect_same_verdicts(const Report& direct, const Report& adapter) {
  ASSERT_EQ(direct.requirements.size(), adapter.requirements.size());
  for (std::size_t i = 0; i < direct.requirements.size(); ++i) {
    const auto& a = direct.requirements[i];
    const auto& b = adapter.requirements[i];
    EXPECT_EQ(a.outcome, b.outcome) << a.requirement.id << ": " << b.evidence;
    EXPECT_EQ(a.evidence, b.evidence) << a.requirement.id;
  }
  for (const CheckResult& c : adapter.checks)
    EXPECT_TRUE(c.stopped.empty()) << c.name << ": " << c.stopped;
}

class AdapterTest : public ::testing::TestWithParam<Transport> {};

TEST_P(AdapterTest, TheWholeSuiteThroughTheProtocolMatchesTheInProcessRun) {
  ReferenceTarget direct({GetParam(), Profile::Spec, "", BackingKind::Anonymous});
  const Report want = run(direct);

  InProcessAdapter server(GetParam());
  auto t = AdapterTarget::connect(server.client_fd(), server.client_fd(), {});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_TRUE((*t)->has(Capability::Interrupts));
  EXPECT_TRUE((*t)->has(Capability::SuspendResume));
  expect_same_verdicts(want, run(**t));
  t->reset();
}

INSTANTIATE_TEST_SUITE_P(Transports, AdapterTest,
                         ::testing::Values(Transport::Pci, Transport::Mmio), [](const auto& p) {
                           return std::string(p.param == Transport::Pci ? "Pci" : "Mmio");
                         });

TEST(AdapterProgramTest, TheSuiteThroughVmemcheckAdapterMatches) {
  ReferenceTarget direct({Transport::Pci, Profile::Qemu72, "", BackingKind::Anonymous});
  const Report want = run(direct);
  auto t = AdapterTarget::spawn({kAdapter + " --profile qemu-7.2"});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ((*t)->name(), "adapter:reference (qemu-7.2)");
  expect_same_verdicts(want, run(**t));
}

TEST(AdapterProgramTest, GoldenTranscriptOfTheStateCheck) {
  auto t = AdapterTarget::spawn({kAdapter});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const Report r = run(**t, {"state"});
  ASSERT_EQ(r.checks.size(), 1u);
  std::string got;
  for (const std::string& line : r.checks[0].transcript)
    got += line + "\n";
  const std::string path = kSource + "/conformance/tests/golden/adapter-state.txt";
  std::ifstream f(path);
  std::stringstream want;
  want << f.rdbuf();
  if (getenv("VMEM_UPDATE_GOLDEN")) {
    std::ofstream(path) << got;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(got, want.str()) << "the protocol lines changed; if on purpose, run with "
                                "VMEM_UPDATE_GOLDEN=1 and review the diff";
}

TEST(AdapterProgramTest, AnAdapterThatIsNotThereFailsEveryCheckWithTheReason) {
  auto t = AdapterTarget::spawn({"exec /nonexistent/vmm-adapter"});
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("/nonexistent/vmm-adapter"), std::string::npos)
      << t.error().message;
}

TEST(AdapterProgramTest, AnAdapterThatDiesIsReplacedForTheNextCheck) {
  // The first adapter sees only 200 lines (then its input ends and it exits); the ones started
  // after it are whole. A shell loop passes the lines on, not head(1), which buffers them.
  const std::string once = ::testing::TempDir() + "vmem-adapter-once";
  std::remove(once.c_str());
  const std::string cmd = "if [ -e " + once + " ]; then exec " + kAdapter + "; else touch " + once +
                          "; i=0; while [ $i -lt 200 ] && IFS= read -r l; do "
                          "printf '%s\\n' \"$l\"; i=$((i+1)); done | " +
                          kAdapter + "; fi";
  auto t = AdapterTarget::spawn({cmd, std::chrono::milliseconds(2000)});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const Report r = run(**t, {"plug", "state"});
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_NE(r.checks[0].stopped.find("adapter"), std::string::npos) << r.checks[0].stopped;
  EXPECT_TRUE(r.checks[1].stopped.empty()) << r.checks[1].stopped;
  EXPECT_EQ(r.checks[1].outcome(), Outcome::Pass);
  std::remove(once.c_str());
}

TEST(AdapterProgramTest, AHungAdapterFailsWithinTheTimeout) {
  // Answers the handshake, then never again.
  auto t =
      AdapterTarget::spawn({"read -r l; echo 'OK vmemcheck-adapter 1 caps= name=stuck'; sleep 60",
                            std::chrono::milliseconds(200)});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const Report r = run(**t, {"state"});
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_NE(r.checks[0].stopped.find("adapter"), std::string::npos) << r.checks[0].stopped;
  EXPECT_TRUE(r.has(Outcome::Fail));
}

TEST(AdapterProgramTest, GarbageRepliesAreErrorsNotCrashes) {
  auto t = AdapterTarget::spawn(
      {"read -r l; echo 'OK vmemcheck-adapter 1 caps=resize name=liar'; "
       "while read -r l; do echo 'OK transport=pci scratch=0x100000 scratch-size=0x1000000 "
       "bar-window=0xe0000000 garbage'; done",
       std::chrono::milliseconds(500)});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const Report r = run(**t, {"state"});
  EXPECT_TRUE(r.has(Outcome::Fail));
  EXPECT_FALSE(r.checks[0].stopped.empty());
}

}  // namespace
}  // namespace vmem::conformance
