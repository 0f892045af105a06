// The QEMU target against a real qemu-system-x86_64 (label qemu). Each test starts its own QEMU
// (ctest runs every TEST in its own process), so the tests are few and each does a lot with one
// machine. A minimal virtio-pci driver below (PCI scan, BAR mapping, one virtqueue) is enough to
// see the device answer; the suite's real driver lives elsewhere.
#include "conformance/target/qemu_target.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conformance/target/child_process.h"
#include "conformance/target/qemu_process.h"
#include "conformance/target/tests/orphan_check.h"
#include "conformance/tests/must.h"

extern char** environ;

namespace vmem::conformance {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1ULL << 20;

// --- A minimal virtio-pci driver over Target ---------------------------------------------------

uint32_t cfg_read(Target& t, unsigned slot, unsigned reg) {
  MUST(t.io_write(0xcf8, 4, 0x80000000u | slot << 11 | reg));
  return MUST(t.io_read(0xcfc, 4));
}

void cfg_write(Target& t, unsigned slot, unsigned reg, uint32_t value) {
  MUST(t.io_write(0xcf8, 4, 0x80000000u | slot << 11 | reg));
  MUST(t.io_write(0xcfc, 4, value));
}

std::vector<unsigned> find_virtio_mem(Target& t) {
  std::vector<unsigned> slots;
  for (unsigned slot = 0; slot < 32; ++slot) {
    if (cfg_read(t, slot, 0) == 0x10581af4) slots.push_back(slot);
  }
  return slots;
}

// BAR4 is the 64-bit memory BAR holding every virtio structure (toolchain.md section 6).
void map_bar4(Target& t, unsigned slot, uint64_t base) {
  cfg_write(t, slot, 0x20, static_cast<uint32_t>(base));
  cfg_write(t, slot, 0x24, static_cast<uint32_t>(base >> 32));
  cfg_write(t, slot, 0x04, cfg_read(t, slot, 0x04) | 0x6);  // memory space + bus master
}

struct MemConfig {
  uint64_t block_size, addr, region_size, usable_region_size, plugged_size, requested_size;
  uint16_t node_id;
};

MemConfig read_config(Target& t, uint64_t bar) {
  const uint64_t c = bar + 0x2000;
  MemConfig m{};
  m.block_size = MUST(t.mmio_read(c + 0, 8));
  m.node_id = static_cast<uint16_t>(MUST(t.mmio_read(c + 8, 2)));
  m.addr = MUST(t.mmio_read(c + 16, 8));
  m.region_size = MUST(t.mmio_read(c + 24, 8));
  m.usable_region_size = MUST(t.mmio_read(c + 32, 8));
  m.plugged_size = MUST(t.mmio_read(c + 40, 8));
  m.requested_size = MUST(t.mmio_read(c + 48, 8));
  return m;
}

// Common configuration registers (virtio 1.2, 4.1.4.3).
constexpr uint64_t kFeatureSelect = 0x00, kFeature = 0x04, kDriverFeatureSelect = 0x08,
                   kDriverFeature = 0x0c, kStatus = 0x14, kQueueSelect = 0x16, kQueueSize = 0x18,
                   kQueueEnable = 0x1c, kQueueNotifyOff = 0x1e, kQueueDesc = 0x20,
                   kQueueDriver = 0x28, kQueueDevice = 0x30;

uint64_t device_features(Target& t, uint64_t bar) {
  MUST(t.mmio_write(bar + kFeatureSelect, 4, 0));
  const uint64_t lo = MUST(t.mmio_read(bar + kFeature, 4));
  MUST(t.mmio_write(bar + kFeatureSelect, 4, 1));
  return lo | MUST(t.mmio_read(bar + kFeature, 4)) << 32;
}

// Brings the device to DRIVER_OK with VERSION_1 only and queue 0 (8 entries) in scratch RAM.
struct Ring {
  uint64_t desc, avail, used, req, resp;
  uint16_t next = 0;
};

Ring init_driver(Target& t, uint64_t bar, uint64_t scratch) {
  MUST(t.mmio_write(bar + kStatus, 1, 0));
  MUST(t.mmio_write(bar + kStatus, 1, 1 | 2));
  MUST(t.mmio_write(bar + kDriverFeatureSelect, 4, 1));
  MUST(t.mmio_write(bar + kDriverFeature, 4, 1));  // VERSION_1 (bit 32)
  MUST(t.mmio_write(bar + kDriverFeatureSelect, 4, 0));
  MUST(t.mmio_write(bar + kDriverFeature, 4, 0));
  MUST(t.mmio_write(bar + kStatus, 1, 1 | 2 | 8));
  EXPECT_EQ(MUST(t.mmio_read(bar + kStatus, 1)), 0xbu);
  Ring r{scratch, scratch + 0x1000, scratch + 0x2000, scratch + 0x3000, scratch + 0x4000};
  MUST(t.mem_fill(scratch, 0x5000, 0));
  MUST(t.mmio_write(bar + kQueueSelect, 2, 0));
  MUST(t.mmio_write(bar + kQueueSize, 2, 8));
  MUST(t.mmio_write(bar + kQueueDesc, 8, r.desc));
  MUST(t.mmio_write(bar + kQueueDriver, 8, r.avail));
  MUST(t.mmio_write(bar + kQueueDevice, 8, r.used));
  MUST(t.mmio_write(bar + kQueueEnable, 2, 1));
  MUST(t.mmio_write(bar + kStatus, 1, 0xf));
  EXPECT_EQ(MUST(t.mmio_read(bar + kStatus, 1)), 0xfu);
  return r;
}

void put_le(std::vector<uint8_t>& b, std::size_t at, uint64_t v, unsigned size) {
  for (unsigned i = 0; i < size; ++i)
    b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// One virtio-mem request (type PLUG 0, UNPLUG 1, UNPLUG_ALL 2, STATE 3); returns the response
// type (ACK 0, NACK 1, BUSY 2, ERROR 3).
uint16_t request(Target& t, uint64_t bar, Ring& r, uint16_t type, uint64_t addr, uint16_t nb) {
  std::vector<uint8_t> req(24);
  put_le(req, 0, type, 2);
  put_le(req, 8, addr, 8);
  put_le(req, 16, nb, 2);
  MUST(t.mem_write(r.req, req));
  std::vector<uint8_t> desc(32);
  put_le(desc, 0, r.req, 8);
  put_le(desc, 8, 24, 4);
  put_le(desc, 12, 1, 2);  // NEXT
  put_le(desc, 14, 1, 2);
  put_le(desc, 16, r.resp, 8);
  put_le(desc, 24, 10, 4);
  put_le(desc, 28, 2, 2);  // WRITE
  MUST(t.mem_write(r.desc, desc));
  MUST(t.mmio_write(r.avail + 4 + 2 * (r.next % 8), 2, 0));
  ++r.next;
  MUST(t.mmio_write(r.avail + 2, 2, r.next));
  const uint64_t notify_off = MUST(t.mmio_read(bar + kQueueNotifyOff, 2));
  MUST(t.mmio_write(bar + 0x3000 + notify_off * 4, 2, 0));
  // QEMU completes the request within the notify write.
  EXPECT_EQ(MUST(t.mmio_read(r.used + 2, 2)), r.next);
  return static_cast<uint16_t>(MUST(t.mmio_read(r.resp, 2)));
}

bool has_line_starting(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const auto& l : lines) {
    if (l.starts_with(prefix)) return true;
  }
  return false;
}

// Waits (bounded) until `pid` is gone or a zombie.

// Runs `argv` for at most `bound` with its stdout captured; returns what it wrote and how it ended
// ("exited with status 0"), with its stderr's tail when it wrote any.
struct Finished {
  std::string output;
  std::string state;
  std::string stderr_tail;
};

Finished run_bounded(const std::vector<std::string>& argv, milliseconds bound) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ChildProcess::Options o;
  o.argv = argv;
  o.stdout_fd = fds[1];
  auto child = ChildProcess::spawn(o);
  close(fds[1]);
  Finished run;
  if (!child.has_value()) {
    close(fds[0]);
    run.state = child.error().message;
    return run;
  }
  // Until EOF: then the script and the QEMU it started (which shares its stdout) are both done.
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    run.output.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  (*child)->wait_exit(milliseconds(1000));
  [[maybe_unused]] auto stopped = (*child)->stop(milliseconds(1000));
  run.state = (*child)->state();
  run.stderr_tail = (*child)->stderr_tail();
  return run;
}

// --- Tests -------------------------------------------------------------------------------------

TEST(QemuTargetTest, ScansConfiguresResizesInterruptsBusyResetAndReuse) {
  QemuTarget t;
  DeviceSetup setup;  // 1 GiB region, 2 MiB blocks, 256 MiB requested
  const MachineLayout layout = MUST(t.start(setup));
  EXPECT_EQ(layout.transport, Transport::Pci);
  EXPECT_EQ(layout.bar_window, 0xe0000000u);
  const pid_t pid = t.pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(process_alive(pid));
  EXPECT_THAT(t.reproducer_header(), HasSubstr("virtio-mem-pci,id=vm0"));
  EXPECT_THAT(t.reproducer_header(), HasSubstr(" -S "));

  EXPECT_EQ(find_virtio_mem(t), (std::vector<unsigned>{1}));
  const uint64_t bar = layout.bar_window;
  map_bar4(t, 1, bar);
  MemConfig c = read_config(t, bar);
  EXPECT_EQ(c.block_size, 2 * kMiB);
  EXPECT_EQ(c.region_size, 1ULL << 30);
  EXPECT_EQ(c.requested_size, 256 * kMiB);
  EXPECT_EQ(c.plugged_size, 0u);
  EXPECT_GE(c.addr, 1ULL << 32);

  // Host resize.
  MUST(t.set_requested_size(0, 512 * kMiB));
  EXPECT_EQ(read_config(t, bar).requested_size, 512 * kMiB);
  auto bad = t.set_requested_size(0, 3 * kMiB);
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr("multiples of 'block-size'"));
  EXPECT_TRUE(t.io_read(0xcfc, 4).has_value());  // a refused command leaves QEMU usable

  // The interrupt line: a config change after DRIVER_OK raises INTx on the computed GSI, and
  // reading ISR lowers it.
  EXPECT_EQ(MUST(t.device_gsi(0)), 21u);
  Ring ring = init_driver(t, bar, layout.scratch_base);
  EXPECT_FALSE(MUST(t.interrupt_asserted(0)));
  MUST(t.set_requested_size(0, 768 * kMiB));
  EXPECT_TRUE(MUST(t.interrupt_asserted(0)));
  EXPECT_EQ(MUST(t.mmio_read(bar + 0x1000, 1)) & 0x2, 0x2u);  // ISR: configuration change
  EXPECT_FALSE(MUST(t.interrupt_asserted(0)));

  // Requests; then the busy window makes PLUG answer BUSY (D14) until it ends.
  EXPECT_EQ(request(t, bar, ring, 0, c.addr, 2), 0);  // PLUG -> ACK
  EXPECT_EQ(read_config(t, bar).plugged_size, 4 * kMiB);
  const auto before_busy = t.take_transcript();
  MUST(t.set_busy(true));
  EXPECT_EQ(request(t, bar, ring, 0, c.addr + 4 * kMiB, 1), 2);  // BUSY
  EXPECT_EQ(request(t, bar, ring, 3, c.addr, 4), 0);             // STATE -> ACK
  MUST(t.set_busy(false));
  EXPECT_EQ(request(t, bar, ring, 0, c.addr + 4 * kMiB, 1), 0);  // ACK again
  EXPECT_EQ(read_config(t, bar).plugged_size, 6 * kMiB);

  // The transcript: qtest lines as sent, QMP commands and waits marked.
  EXPECT_TRUE(has_line_starting(before_busy, "outl 0xcf8 0x80000800"));
  EXPECT_TRUE(has_line_starting(
      before_busy, R"(qmp {"execute":"qom-set","arguments":{"path":"/machine/peripheral/vm0")"));
  const auto busy = t.take_transcript();
  EXPECT_TRUE(has_line_starting(
      busy, R"(qmp {"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1024})"));
  EXPECT_TRUE(has_line_starting(busy, "qmp-wait migration active"));
  EXPECT_TRUE(has_line_starting(busy, "qmp-wait migration cancelled"));

  // start() with the same setup reuses the QEMU: a system reset unplugs everything, clears the
  // BARs and restores the requested size.
  MUST(t.start(setup));
  EXPECT_EQ(t.pid(), pid);
  const auto reuse = t.take_transcript();
  EXPECT_TRUE(has_line_starting(reuse, "qmp-wait event RESET"));
  EXPECT_TRUE(has_line_starting(reuse, "irq_intercept_in ioapic")) << "replayable on its own";
  EXPECT_EQ(cfg_read(t, 1, 0x20) & ~0xfu, 0u);  // the address is gone, the type bits stay
  map_bar4(t, 1, bar);
  c = read_config(t, bar);
  EXPECT_EQ(c.plugged_size, 0u);
  EXPECT_EQ(c.requested_size, 256 * kMiB);
  EXPECT_EQ(MUST(t.mmio_read(bar + kStatus, 1)), 0u);

  // A setup QEMU cannot take is refused without giving up the running QEMU.
  DeviceSetup three;
  three.devices = 3;
  EXPECT_FALSE(t.start(three).has_value());
  EXPECT_EQ(t.pid(), pid);
  EXPECT_TRUE(t.io_read(0xcfc, 4).has_value());

  EXPECT_FALSE(t.suspend_resume().has_value());
}

TEST(QemuTargetTest, TwoDevicesNumaUnpluggedInaccessibleTcgAndLargeRegions) {
  QemuTargetOptions o;
  o.accel = "tcg";
  QemuTarget t(o);
  DeviceSetup setup;
  setup.devices = 2;
  setup.acpi_pxm = true;
  setup.node_id = 2;
  setup.unplugged_inaccessible = true;
  const MachineLayout layout = MUST(t.start(setup));
  EXPECT_EQ(t.accel(), "tcg");
  EXPECT_EQ(find_virtio_mem(t), (std::vector<unsigned>{1, 2}));
  EXPECT_EQ(MUST(t.device_gsi(1)), 22u);
  for (unsigned slot : {1u, 2u}) {
    const uint64_t bar = layout.bar_window + (slot - 1) * 0x10000;
    map_bar4(t, slot, bar);
    EXPECT_EQ(read_config(t, bar).node_id, 2);
    const uint64_t features = device_features(t, bar);
    EXPECT_TRUE(features & (1ULL << 1)) << "UNPLUGGED_INACCESSIBLE offered";
    EXPECT_TRUE(features & (1ULL << 0)) << "ACPI_PXM offered";
  }
  MUST(t.set_requested_size(1, 128 * kMiB));
  EXPECT_EQ(read_config(t, layout.bar_window + 0x10000).requested_size, 128 * kMiB);

  // A different setup replaces the QEMU; the old one is gone.
  const pid_t first = t.pid();
  DeviceSetup large;
  large.region_size = 1ULL << 40;  // needs reserve=off and phys-bits=48
  large.requested_size = 0;
  MUST(t.start(large));
  EXPECT_NE(t.pid(), first);
  EXPECT_TRUE(test::gone_within(first, milliseconds(1000)));
  EXPECT_THAT(t.reproducer_header(), HasSubstr("phys-bits=48"));
  map_bar4(t, 1, layout.bar_window);
  const MemConfig c = read_config(t, layout.bar_window);
  EXPECT_EQ(c.region_size, 1ULL << 40);
  EXPECT_EQ(device_features(t, layout.bar_window) & (1ULL << 1), 0u);
}

// A reproducer (the header, then the transcript) replays with conformance/replay/vmem-replay
// against a fresh QEMU, and every qtest reply in the replay is the one recorded.
TEST(QemuTargetTest, ReproducerReplaysWithVmemReplay) {
  QemuTargetOptions o;
  o.record_replies = true;
  QemuTarget t(o);
  const MachineLayout layout = MUST(t.start({}));
  const std::string header = t.reproducer_header();
  EXPECT_THAT(header, StartsWith("# qemu: /"));  // the binary as resolved
  EXPECT_THAT(header, HasSubstr("virtio-mem-pci,id=vm0"));
  for (const char* harness_only : {"-qtest", "-chardev", "-mon", "qmp0", "vmemcheck-qemu-"})
    EXPECT_THAT(header, Not(HasSubstr(harness_only)));

  const uint64_t bar = layout.bar_window;
  map_bar4(t, 1, bar);
  EXPECT_EQ(read_config(t, bar).block_size, 2 * kMiB);
  MUST(t.set_requested_size(0, 512 * kMiB));
  EXPECT_EQ(read_config(t, bar).requested_size, 512 * kMiB);
  std::vector<uint8_t> pattern(100);  // > QtestBus::kHexMax: b64write and b64read
  for (std::size_t i = 0; i < pattern.size(); ++i)
    pattern[i] = static_cast<uint8_t>(i * 7);
  MUST(t.mem_write(layout.scratch_base, pattern));
  std::vector<uint8_t> back(pattern.size());
  MUST(t.mem_read(layout.scratch_base, back));
  EXPECT_EQ(back, pattern);
  MUST(t.system_reset());
  EXPECT_EQ(cfg_read(t, 1, 0x20) & ~0xfu, 0u);
  map_bar4(t, 1, bar);
  EXPECT_EQ(read_config(t, bar).requested_size, 512 * kMiB);  // a property: survives the reset
  const std::vector<std::string> transcript = t.take_transcript();
  EXPECT_TRUE(has_line_starting(transcript, "qmp-wait event RESET"));
  t.stop();

  char dir[] = "/tmp/vmemcheck-replay-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string repro = std::string(dir) + "/test.repro";
  {
    std::ofstream out(repro);
    out << "# vmemcheck reproducer: ReproducerReplaysWithVmemReplay\n" << header << "\n";
    for (const std::string& line : transcript)
      out << line << "\n";
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Finished run = run_bounded(
      {"python3", std::string(VMEM_SOURCE_DIR) + "/conformance/replay/vmem-replay", "qemu", repro},
      milliseconds(60000));
  const auto took = std::chrono::steady_clock::now() - t0;
  std::filesystem::remove_all(dir);
  if (run.state.find("not found in PATH") != std::string::npos) GTEST_SKIP() << run.state;
  ASSERT_EQ(run.state, "exited with status 0") << "output:\n"
                                               << run.output << "\nstderr:\n"
                                               << run.stderr_tail;
  EXPECT_LT(took, std::chrono::seconds(30));

  // The device's answers: its config (block size 2 MiB at BAR + 0x2000), the resize, the reset.
  EXPECT_THAT(run.output,
              HasSubstr(fmt::format("readq {:#x}\n    -> OK 0x{:016x}", bar + 0x2000, 2 * kMiB)));
  EXPECT_THAT(run.output,
              HasSubstr(fmt::format("readq {:#x}\n    -> OK 0x{:016x}", bar + 0x2030, 512 * kMiB)));
  EXPECT_THAT(run.output, HasSubstr(R"("property":"requested-size","value":536870912}})"
                                    "\n    -> {\"return\": {}}"));
  EXPECT_THAT(run.output, HasSubstr("qmp-wait event RESET\n    -> seen"));

  // Every qtest reply recorded (comments "# < ...", less QMP's JSON and IRQ lines) comes back in
  // the same order in the replay ("    -> ..." after each line that is not QMP).
  std::vector<std::string> recorded;
  for (const std::string& line : transcript) {
    if (line.starts_with("# < ") && !line.starts_with("# < {") && !line.starts_with("# < IRQ ")) {
      recorded.push_back(line.substr(4));
    }
  }
  std::vector<std::string> replayed;
  std::istringstream lines(run.output);
  std::string previous, line;
  while (std::getline(lines, line)) {
    if (line.starts_with("    -> ") && !previous.starts_with("qmp")) {
      replayed.push_back(line.substr(7));
    }
    previous = line;
  }
  EXPECT_GT(recorded.size(), 40u);
  EXPECT_EQ(replayed, recorded);

  // The replay's QEMU was told to quit, and did.
  const auto at = run.output.find("# QEMU (pid ");
  ASSERT_NE(at, std::string::npos) << run.output;
  const pid_t replay_qemu = std::atoi(run.output.c_str() + at + 12);
  EXPECT_THAT(run.output.substr(at),
              StartsWith(fmt::format("# QEMU (pid {}) exited with status 0", replay_qemu)));
  EXPECT_FALSE(process_alive(replay_qemu));
}

// vmem-replay fails fast, and says why, when the reproducer has no header or QEMU refuses it.
TEST(QemuTargetTest, ReplayOfABrokenReproducerFailsWithTheReason) {
  char dir[] = "/tmp/vmemcheck-replay-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string script = std::string(VMEM_SOURCE_DIR) + "/conformance/replay/vmem-replay";
  const std::string no_header = std::string(dir) + "/no-header.repro";
  const std::string refused = std::string(dir) + "/refused.repro";
  std::ofstream(no_header) << "inl 0xcfc\n";
  std::ofstream(refused) << "# qemu: qemu-system-x86_64 -no-such-option\ninl 0xcfc\n";
  const Finished a = run_bounded({"python3", script, "qemu", no_header}, milliseconds(20000));
  const Finished b = run_bounded({"python3", script, "qemu", refused}, milliseconds(20000));
  std::filesystem::remove_all(dir);
  if (a.state.find("not found in PATH") != std::string::npos) GTEST_SKIP() << a.state;
  EXPECT_EQ(a.state, "exited with status 1");
  EXPECT_THAT(a.stderr_tail, HasSubstr("no '# qemu: COMMAND LINE' header"));
  EXPECT_EQ(b.state, "exited with status 1");
  EXPECT_THAT(b.stderr_tail, HasSubstr("-no-such-option: invalid option"));
  EXPECT_THAT(b.stderr_tail, HasSubstr("QEMU ended (status 1) before connecting"));
}

TEST(QemuTargetTest, KilledQemuIsReportedAndReplacedByTheNextStart) {
  QemuTarget t;
  const MachineLayout layout = MUST(t.start({}));
  const pid_t pid = t.pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  auto r = t.mmio_read(layout.scratch_base, 4);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("closed the connection"));
  EXPECT_THAT(r.error().message, HasSubstr("was killed by signal 9"));
  // Later calls say the same without touching the dead QEMU.
  auto again = t.io_read(0xcfc, 4);
  ASSERT_FALSE(again.has_value());
  EXPECT_THAT(again.error().message, HasSubstr("start() replaces it"));
  EXPECT_THAT(again.error().message, HasSubstr("signal 9"));

  MUST(t.start({}));
  EXPECT_NE(t.pid(), pid);
  EXPECT_FALSE(process_alive(pid));  // reaped, not a zombie
  EXPECT_EQ(find_virtio_mem(t), (std::vector<unsigned>{1}));
}

TEST(QemuTargetTest, HungQemuTimesOutAndIsReplacedByTheNextStart) {
  QemuTargetOptions o;
  o.call_timeout = milliseconds(300);
  o.stop_timeout = milliseconds(300);
  QemuTarget t(o);
  MUST(t.start({}));
  const pid_t pid = t.pid();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = t.io_read(0xcfc, 4);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(3000));
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("no reply within 300 ms"));
  EXPECT_THAT(r.error().message, HasSubstr("is still running"));
  // The stopped QEMU ignores SIGTERM; the next start() escalates to SIGKILL.
  MUST(t.start({}));
  EXPECT_NE(t.pid(), pid);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(find_virtio_mem(t), (std::vector<unsigned>{1}));
}

TEST(QemuTargetTest, TwoInstancesAndDestructionLeaveNoProcess) {
  pid_t a_pid = -1;
  pid_t b_pid = -1;
  {
    QemuTarget a;
    QemuTarget b;
    MUST(a.start({}));
    MUST(b.start({}));
    a_pid = a.pid();
    b_pid = b.pid();
    EXPECT_NE(a_pid, b_pid);
    EXPECT_EQ(find_virtio_mem(a), (std::vector<unsigned>{1}));
    EXPECT_EQ(find_virtio_mem(b), (std::vector<unsigned>{1}));
    a.stop();
    EXPECT_FALSE(process_alive(a_pid));
    EXPECT_TRUE(process_alive(b_pid));
    EXPECT_FALSE(a.io_read(0xcfc, 4).has_value());
  }
  EXPECT_FALSE(process_alive(b_pid));
}

TEST(QemuTargetTest, StartErrorsCarryTheReason) {
  QemuTargetOptions missing;
  missing.binary = "/nonexistent/qemu-system-x86_64";
  auto r = QemuTarget(missing).start({});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("No such file"));

  QemuTargetOptions bad_arg;
  bad_arg.extra_args = {"-no-such-option"};
  QemuTarget t(bad_arg);
  r = t.start({});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("exited with status 1"));
  EXPECT_THAT(r.error().message, HasSubstr("-no-such-option"));
  EXPECT_EQ(t.pid(), -1);

  DeviceSetup bad_size;
  bad_size.requested_size = 3 * kMiB;  // not a multiple of the block size
  r = QemuTarget().start(bad_size);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("requested-size"));
}

// The child half of the next test: starts a QEMU, tells the parent its pid, and waits to be
// killed. Disabled so that it runs only when the parent asks for it.
TEST(QemuOrphanChild, DISABLED_HoldsQemuUntilKilled) {
  const char* path = std::getenv("VMEM_QEMU_ORPHAN_PID_FILE");
  if (path == nullptr) GTEST_SKIP() << "run by HarnessKilledLeavesNoQemu";
  QemuTarget t;
  MUST(t.start({}));
  test::publish_pid(path, t.pid());
  std::this_thread::sleep_for(std::chrono::seconds(30));
}

TEST(QemuTargetTest, HarnessKilledLeavesNoQemu) {
  test::expect_no_orphan("VMEM_QEMU_ORPHAN_PID_FILE",
                         "QemuOrphanChild.DISABLED_HoldsQemuUntilKilled");
}

}  // namespace
}  // namespace vmem::conformance
