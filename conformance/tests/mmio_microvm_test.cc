// The suite's generic virtio-mmio driver (probe_mmio and its MmioDriver) against QEMU's own
// virtio-mmio (label qemu). QEMU 7.2 has no virtio-mem on MMIO, so the device is microvm's
// virtio-rng, version 2 with `-global virtio-mmio.force-legacy=false` (decisions D14,
// toolchain.md "Added after a second look"): nothing else outside the project speaks MMIO here.
//
// The target below is the least a Target needs to be for this: QEMU (microvm, -S) over qtest for
// guest RAM, MMIO and port I/O, and QMP only to quit and to let the machine run. Every host verb
// is an error; it starts one machine and ignores the DeviceSetup (there is no virtio-mem).
//
// One thing that is QEMU's, not the driver's: virtio-rng drops the entropy its backend delivers
// while the machine is not running (chr_read checks for RUN_STATE_RUNNING), so under -S a request
// is never answered. The data-path test sets the device up under -S, then lets the machine run
// (QMP cont; the vCPU runs microvm's qboot, which finds nothing to boot and halts with its stack
// below 0x8000, far from the scratch RAM) and only then posts the buffer and notifies.
#include <errno.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conformance/driver/transport_driver.h"
#include "conformance/target/line_channel.h"
#include "conformance/target/qemu_process.h"
#include "conformance/target/qemu_target.h"
#include "conformance/target/qmp_client.h"
#include "conformance/target/qtest_bus.h"
#include "conformance/tests/must.h"
#include "reference/transport/virtio_mmio.h"
#include "reference/virtio/virtio_device.h"
#include "reference/virtqueue/driver_queue.h"

namespace vmem::conformance {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1ULL << 20;
// microvm's virtio-mmio transports: slots of 0x200 from 0xfeb00000, filled from the top.
constexpr uint64_t kMmioWindow = 0xfeb00000;
constexpr unsigned kMmioSlots = 32;
// Where toolchain.md says the virtio-rng lands; the target finds it by scanning anyway.
constexpr uint64_t kExpectedRngBase = 0xfeb02e00;
constexpr uint32_t kVirtioRng = 4;
constexpr uint32_t kVirtioMem = 24;

// --- The target --------------------------------------------------------------------------------

class MicrovmTarget final : public Target {
 public:
  // RAM for the rings and buffers: the 64 MiB guest's 16-32 MiB, clear of qboot's low memory.
  static constexpr uint64_t kScratchBase = 16 * kMiB;
  static constexpr uint64_t kScratchSize = 16 * kMiB;

  MicrovmTarget() = default;
  ~MicrovmTarget() override { stop(); }

  // The machine arguments (start() adds QemuProcess's sockets).
  static std::vector<std::string> machine_args(const std::string& accel) {
    return {"-M",          "microvm",
            "-global",     "virtio-mmio.force-legacy=false",
            "-device",     "virtio-rng-device",
            "-display",    "none",
            "-nodefaults", "-S",
            "-accel",      accel,
            "-m",          "64M"};
  }

  std::string name() const override { return "qemu-microvm"; }
  bool has(Capability) const override { return false; }

  Result<MachineLayout> start(const DeviceSetup&) override {
    stop();
    accel_ = kvm_usable() ? "kvm" : "tcg";
    QemuProcess::Options po;
    po.args = machine_args(accel_);
    VMEM_ASSIGN_OR_RETURN(process_, QemuProcess::start(po));
    command_line_ = shell_join([&] {
      std::vector<std::string> argv{process_->argv().front()};
      argv.insert(argv.end(), po.args.begin(), po.args.end());
      return argv;
    }());
    LineChannel::Options qo;
    qo.timeout = milliseconds(5000);
    qo.name = "qtest";
    const int qtest_fd = process_->take_qtest_fd();
    qtest_ = std::make_unique<LineChannel>(qtest_fd, qtest_fd, qo);
    bus_ = std::make_unique<QtestBus>(*qtest_);
    LineChannel::Options mo = qo;
    mo.name = "QMP";
    const int qmp_fd = process_->take_qmp_fd();
    qmp_ = std::make_unique<QmpClient>(std::make_unique<LineChannel>(qmp_fd, qmp_fd, mo));
    VMEM_TRY(qmp_->handshake());

    // Every transport answers the magic and version 2; DeviceID 0 is an empty slot.
    MachineLayout layout;
    layout.transport = Transport::Mmio;
    layout.scratch_base = kScratchBase;
    layout.scratch_size = kScratchSize;
    for (unsigned slot = 0; slot < kMmioSlots; ++slot) {
      const uint64_t base = kMmioWindow + 0x200ULL * slot;
      VMEM_ASSIGN_OR_RETURN(uint64_t magic, bus_->mmio_read(base + mmio::kMagicValue, 4));
      if (magic != mmio::kMagic) break;
      VMEM_ASSIGN_OR_RETURN(uint64_t version, bus_->mmio_read(base + mmio::kVersion, 4));
      VMEM_ASSIGN_OR_RETURN(uint64_t id, bus_->mmio_read(base + mmio::kDeviceId, 4));
      ++transports_;
      if (version == 2 && id == kVirtioRng) layout.mmio_bases.push_back(base);
    }
    if (layout.mmio_bases.empty()) {
      return unexpected(Error{fmt::format(
          "no version-2 virtio-rng among {} virtio-mmio transports from {:#x}; QEMU: {}",
          transports_, kMmioWindow, command_line_)});
    }
    return layout;
  }

  // --- The guest's side, over qtest ---
  Result<uint32_t> io_read(uint16_t port, unsigned size) override {
    VMEM_TRY(running());
    return bus_->io_read(port, size);
  }
  Status io_write(uint16_t port, unsigned size, uint32_t value) override {
    VMEM_TRY(running());
    return bus_->io_write(port, size, value);
  }
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) override {
    VMEM_TRY(running());
    return bus_->mmio_read(gpa, size);
  }
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t value) override {
    VMEM_TRY(running());
    return bus_->mmio_write(gpa, size, value);
  }
  Status mem_read(uint64_t gpa, std::span<uint8_t> out) override {
    VMEM_TRY(running());
    return bus_->mem_read(gpa, out);
  }
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in) override {
    VMEM_TRY(running());
    return bus_->mem_write(gpa, in);
  }
  Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) override {
    VMEM_TRY(running());
    return bus_->mem_fill(gpa, len, byte);
  }
  Result<bool> interrupt_asserted(unsigned) override { return refuse("interrupt lines"); }

  // --- The host's side: none ---
  Status set_requested_size(unsigned, uint64_t) override { return refuse("set_requested_size"); }
  Status system_reset() override { return refuse("system_reset"); }
  Status set_busy(bool) override { return refuse("set_busy"); }
  Status suspend_resume() override { return refuse("suspend_resume"); }
  Status refuse_next_populate(unsigned) override { return refuse("refuse_next_populate"); }
  std::string reproducer_header() const override { return "# qemu: " + command_line_; }

  // --- Beyond Target ---
  // Leaves -S behind (QMP cont): virtio-rng answers only while the machine runs.
  Status run_machine() {
    VMEM_TRY(running());
    VMEM_TRY(qmp_->execute("cont"));
    return ok();
  }
  // QMP quit, then QemuProcess's SIGTERM/SIGKILL and reap. Idempotent.
  void stop() {
    if (!process_) return;
    if (qmp_ && qmp_->channel().healthy() && process_->running()) {
      qmp_->channel().set_timeout(milliseconds(2000));
      [[maybe_unused]] auto quit = qmp_->execute("quit");
      process_->wait_exit(milliseconds(2000));
    }
    bus_.reset();
    qtest_.reset();
    qmp_.reset();
    [[maybe_unused]] auto stopped = process_->stop(milliseconds(2000));
    process_.reset();
  }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  const std::string& accel() const { return accel_; }
  const std::string& command_line() const { return command_line_; }
  unsigned transports() const { return transports_; }

 private:
  Status running() const {
    if (!bus_) return unexpected(Error{"qemu-microvm: not started"});
    return ok();
  }
  static Error refused(const char* what) {
    return Error{fmt::format("qemu-microvm: {} is not offered (guest memory and MMIO only)", what)};
  }
  static Unexpected<Error> refuse(const char* what) { return unexpected(refused(what)); }

  std::string accel_;
  std::string command_line_;
  unsigned transports_ = 0;
  std::unique_ptr<QemuProcess> process_;
  std::unique_ptr<LineChannel> qtest_;
  std::unique_ptr<QtestBus> bus_;
  std::unique_ptr<QmpClient> qmp_;
};

// The queue's view of the target's RAM, keeping the first error (DriverQueue reports only false).
class TargetMemory final : public DriverMemory {
 public:
  explicit TargetMemory(Target& t) : t_(t) {}
  bool read(uint64_t gpa, std::span<uint8_t> out) override { return keep(t_.mem_read(gpa, out)); }
  bool write(uint64_t gpa, std::span<const uint8_t> in) override {
    return keep(t_.mem_write(gpa, in));
  }
  std::string first_error() const { return error_.value_or(""); }

 private:
  bool keep(const Status& s) {
    if (!s.has_value() && !error_) error_ = s.error().message;
    return s.has_value();
  }
  Target& t_;
  std::optional<std::string> error_;
};

bool process_gone(pid_t pid) {
  return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

class MmioMicrovmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_ = MUST(target_.start(DeviceSetup{}));
    pid_ = target_.pid();
    RecordProperty("qemu", target_.command_line());
  }
  void TearDown() override {
    target_.stop();
    EXPECT_TRUE(process_gone(pid_)) << "QEMU pid " << pid_ << " outlived its target";
  }

  MicrovmTarget target_;
  MachineLayout layout_;
  pid_t pid_ = -1;
};

// --- Probing -----------------------------------------------------------------------------------

TEST_F(MmioMicrovmTest, ScanFindsTheRngWhereTheNotesSay) {
  ASSERT_EQ(layout_.mmio_bases.size(), 1u);
  EXPECT_EQ(layout_.mmio_bases[0], kExpectedRngBase) << target_.command_line();
  EXPECT_GE(target_.transports(), 24u);  // microvm creates its transports whether used or not
}

TEST_F(MmioMicrovmTest, ProbeRefusesTheWrongDeviceId) {
  auto r = probe_mmio(target_, layout_, kVirtioMem, 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, fmt::format("device ID {} at {:#x}, expected {}", kVirtioRng,
                                           layout_.mmio_bases[0], kVirtioMem));
  // An empty transport (DeviceID 0) is no device either.
  MachineLayout empty = layout_;
  empty.mmio_bases = {kMmioWindow};
  auto e = probe_mmio(target_, empty, kVirtioRng, 0);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message,
            fmt::format("device ID 0 at {:#x}, expected {}", kMmioWindow, kVirtioRng));
  // And an index past the layout's list.
  auto past = probe_mmio(target_, layout_, kVirtioRng, 1);
  ASSERT_FALSE(past.has_value());
  EXPECT_THAT(past.error().message, HasSubstr("no virtio-mmio device 1"));
}

TEST_F(MmioMicrovmTest, ProbeRefusesANonVirtioBaseOnTheMagic) {
  // Guest RAM with a known pattern: not a virtio-mmio header.
  const uint64_t base = layout_.scratch_base;
  MUST(target_.mem_fill(base, 0x200, 0x5a));
  MachineLayout ram = layout_;
  ram.mmio_bases = {base};
  auto r = probe_mmio(target_, ram, kVirtioRng, 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, fmt::format("magic 0x5a5a5a5a at {:#x}", base));
}

// --- Initialisation, one request, reset --------------------------------------------------------

TEST_F(MmioMicrovmTest, GenericInitThenOneRequestThenReset) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<TransportDriver> drv = MUST(probe_mmio(target_, layout_, kVirtioRng, 0));
  EXPECT_EQ(drv->device_id(), kVirtioRng);
  EXPECT_EQ(drv->describe(), fmt::format("virtio-mmio at {:#x}", layout_.mmio_bases[0]));

  // Reset, ACKNOWLEDGE, DRIVER.
  MUST(drv->set_status(0));
  EXPECT_EQ(MUST(drv->status()), 0);
  uint8_t status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
  MUST(drv->set_status(status));
  status |= VIRTIO_CONFIG_S_DRIVER;
  MUST(drv->set_status(status));
  EXPECT_EQ(MUST(drv->status()), status);

  // Features: VERSION_1 offered (bit 32, so DeviceFeaturesSel 1 works), and taken alone.
  const uint64_t offered = MUST(drv->device_features());
  const uint64_t version_1 = uint64_t{1} << VIRTIO_F_VERSION_1;
  ASSERT_NE(offered & version_1, 0u) << fmt::format("device features {:#x}", offered);
  MUST(drv->set_driver_features(version_1));
  status |= VIRTIO_CONFIG_S_FEATURES_OK;
  MUST(drv->set_status(status));
  ASSERT_EQ(MUST(drv->status()), status) << "FEATURES_OK did not stick";

  // Queue 0 in the scratch RAM; virtio-rng has exactly one queue.
  const uint16_t max = MUST(drv->queue_max_size(0));
  ASSERT_GE(max, 8u);
  EXPECT_EQ(MUST(drv->queue_max_size(1)), 0u);
  TargetMemory memory(target_);
  constexpr uint16_t kQueueSize = 8;
  ASSERT_LE(DriverQueue::footprint(kQueueSize), layout_.scratch_size);
  DriverQueue queue(memory, layout_.scratch_base, kQueueSize);
  MUST(drv->setup_queue(0, kQueueSize, queue.desc_table(), queue.avail_ring(), queue.used_ring()));
  const uint64_t base = layout_.mmio_bases[0];
  EXPECT_EQ(MUST(target_.mmio_read(base + mmio::kQueueReady, 4)), 1u);
  status |= VIRTIO_CONFIG_S_DRIVER_OK;
  MUST(drv->set_status(status));
  EXPECT_EQ(MUST(drv->status()), status);
  EXPECT_EQ(MUST(drv->take_isr()), 0u);

  // One writable descriptor of 64 bytes (build_chain fills it with the 0xee canary).
  MUST(target_.run_machine());
  const std::optional<uint16_t> head = queue.build_chain(0, {}, ChainShape{{}, {64}});
  ASSERT_TRUE(head.has_value()) << memory.first_error();
  ASSERT_TRUE(queue.publish(*head)) << memory.first_error();
  // Nothing happens before the notification.
  EXPECT_EQ(queue.device_used_idx(), 0u);
  MUST(drv->notify(0));

  // Each poll is a qtest round trip, so QEMU's main loop turns between them.
  std::optional<UsedElement> used;
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(500);
  while (!(used = queue.pop_used()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_TRUE(used.has_value()) << "no used element within 500 ms; used idx "
                                << queue.device_used_idx() << "; " << memory.first_error();
  EXPECT_EQ(used->id, *head);
  EXPECT_EQ(used->len, 64u);
  const std::vector<uint8_t> bytes = queue.read_response(*head, 64);
  ASSERT_EQ(bytes.size(), 64u) << memory.first_error();
  EXPECT_FALSE(std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0xee; }))
      << "the device wrote nothing over the canary";
  EXPECT_FALSE(queue.pop_used().has_value());

  // The used-buffer interrupt, acknowledged by take_isr.
  const uint8_t isr = MUST(drv->take_isr());
  EXPECT_EQ(isr & 1, 1) << fmt::format("InterruptStatus {:#x}", isr);
  EXPECT_EQ(MUST(drv->take_isr()), 0u) << "InterruptACK did not clear the status";

  // Device reset: status and the queue's readiness read back 0.
  MUST(drv->set_status(0));
  EXPECT_EQ(MUST(drv->status()), 0u);
  EXPECT_EQ(MUST(target_.mmio_read(base + mmio::kQueueReady, 4)), 0u);
  EXPECT_TRUE(memory.first_error().empty()) << memory.first_error();

  const auto spent =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  RecordProperty("driver_ms", static_cast<int>(spent.count()));
  RecordProperty("accel", target_.accel());
}

// --- Teardown ----------------------------------------------------------------------------------

TEST(MmioMicrovmTargetTest, LeavesNoQemuBehindAndRefusesHostVerbs) {
  pid_t pid = -1;
  {
    MicrovmTarget t;
    EXPECT_FALSE(t.mmio_read(kExpectedRngBase, 4).has_value());  // not started
    MUST(t.start(DeviceSetup{}));
    pid = t.pid();
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(process_gone(pid));
    EXPECT_FALSE(t.system_reset().has_value());
    EXPECT_FALSE(t.set_requested_size(0, 0).has_value());
    EXPECT_FALSE(t.set_busy(true).has_value());
    EXPECT_FALSE(t.suspend_resume().has_value());
    EXPECT_FALSE(t.interrupt_asserted(0).has_value());
    MUST(t.run_machine());  // a running machine goes just as well
  }                         // the destructor quits QEMU
  EXPECT_TRUE(process_gone(pid)) << "QEMU pid " << pid << " outlived its target";
}

}  // namespace
}  // namespace vmem::conformance
