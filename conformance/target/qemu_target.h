// The QEMU target: a qemu-system-x86_64 (Debian's 7.2 by default, or the user's own build)
// with one or two virtio-mem-pci devices, driven as a guest over qtest and as a host over QMP
// (decisions D14, toolchain.md sections 6-8).
//
// QEMU runs with -S, so no vCPU ever executes and the harness is the only driver: it scans PCI
// through 0xcf8/0xcfc, maps BARs in MachineLayout::bar_window and builds rings in the scratch
// RAM. The device regions are placed by QEMU above 4 GiB; the driver reads `addr` from the
// device config.
//
// Promises: one QEMU at a time, kept while start() asks for the same DeviceSetup (then it is
// reset, not restarted: requested sizes restored, busy window ended, QMP system_reset and its
// RESET event awaited, interrupt interception repeated so that the transcript from there on
// replays on its own); a QEMU that crashes or stops answering makes the failing call return an
// error saying so (exit status or signal, and the tail of its stderr) and is replaced by the next
// start(); no QEMU outlives the target or the harness (QemuProcess). Like every Target, it is
// used from one thread at a time.
//
// Transcript (decisions D16), one entry per line:
//   <qtest line>           sent on the qtest socket as is ("outl 0xcf8 0x80000800")
//   qmp <json>             a QMP command; the replay waits for its reply
//   qmp-wait event NAME    wait for the QMP event NAME (system_reset's RESET)
//   qmp-wait migration S   poll query-migrate until its status is S (the busy window)
//   # ...                  a comment (replies, when QemuTargetOptions::record_replies is set)
// The QMP greeting and qmp_capabilities are not in it: a replay does its own handshake.
// conformance/replay/vmem-replay replays a reproducer (reproducer_header(), then these lines)
// against a fresh QEMU.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/target/target.h"

namespace vmem::conformance {

class LineChannel;
class QemuProcess;
class QmpClient;
class QtestBus;

struct QemuTargetOptions {
  // A path to the user's own build, or a name looked up in PATH.
  std::string binary = "qemu-system-x86_64";
  // Interrupts are supported on q35 only (the INTx routing below is q35's).
  std::string machine = "q35";
  // Empty: kvm when /dev/kvm can create a VM, else tcg. qtest speed is the same with either.
  std::string accel;
  // Guest RAM (a multiple of 1 MiB, at least 32 MiB): the scratch area lives in it.
  uint64_t ram_size = 128ULL << 20;
  // Appended to the command line, after everything vmemcheck puts there.
  std::vector<std::string> extra_args;
  // From exec until QEMU has connected and greeted.
  std::chrono::milliseconds start_timeout{10000};
  // One qtest or QMP exchange.
  std::chrono::milliseconds call_timeout{5000};
  // system_reset until RESET; the busy window until query-migrate reports it.
  std::chrono::milliseconds reset_timeout{5000};
  // Each step of teardown: quit, then SIGTERM, then SIGKILL.
  std::chrono::milliseconds stop_timeout{2000};
  // Record replies and interrupt lines in the transcript as comments.
  bool record_replies = false;
};

class QemuTarget final : public Target {
 public:
  // Where the devices sit: device i is at 00:<1+i>.0 on the root bus.
  static constexpr unsigned kFirstSlot = 1;
  // MachineLayout: scratch RAM for rings and buffers, and a free PCI window below 4 GiB.
  static constexpr uint64_t kScratchBase = 1ULL << 20;
  static constexpr uint64_t kScratchSize = 16ULL << 20;
  static constexpr uint64_t kBarWindow = 0xe0000000;
  // The busy window's migration bandwidth, in bytes/s. D14's 1 MiB/s finishes a migration of
  // 128 MiB of untouched RAM in under a second (zero pages cost 9 bytes each); at 1 KiB/s it
  // stays active for about 5 minutes, and set_busy(false) reports it if it did not.
  static constexpr uint64_t kBusyBandwidth = 1024;

  explicit QemuTarget(QemuTargetOptions options = {});
  ~QemuTarget() override;
  QemuTarget(const QemuTarget&) = delete;
  QemuTarget& operator=(const QemuTarget&) = delete;

  std::string name() const override { return "qemu"; }
  bool has(Capability c) const override;

  Result<MachineLayout> start(const DeviceSetup& setup) override;

  Result<uint32_t> io_read(uint16_t port, unsigned size) override;
  Status io_write(uint16_t port, unsigned size, uint32_t value) override;
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) override;
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t value) override;
  Status mem_read(uint64_t gpa, std::span<uint8_t> out) override;
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in) override;
  Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) override;
  Result<bool> interrupt_asserted(unsigned index) override;

  // qom-set requested-size on /machine/peripheral/vm<index>.
  Status set_requested_size(unsigned index, uint64_t size) override;
  // QMP system_reset, then the RESET event within reset_timeout. BARs read 0 afterwards.
  Status system_reset() override;
  // A throttled migration to `exec:cat > /dev/null` (decisions D14); checked active on entry,
  // cancelled and checked cancelled on exit.
  Status set_busy(bool busy) override;
  // Always an error: no S3 under -S.
  Status suspend_resume() override;
  Status refuse_next_populate(unsigned index) override;

  std::vector<std::string> take_transcript() override;
  // "# qemu: <command line>": the current (or last) QEMU's binary and machine arguments,
  // shell-quoted, without the harness's -qtest, -qtest-log, -chardev and -mon (a replay adds its
  // own sockets); then a "# replay: ..." comment saying how to run it. Empty before start().
  std::string reproducer_header() const override { return reproducer_header_; }

  // --- Beyond Target ---
  // Stops QEMU now (the destructor does too). The next start() launches a new one.
  void stop();
  // The running QEMU's pid, -1 when there is none.
  pid_t pid() const;
  // The accelerator of the current (or last) QEMU.
  const std::string& accel() const { return accel_; }
  // The IOAPIC input (GSI) of device `index`'s INTx line. q35 routes INTx of root-bus slots below
  // 25 through the ICH9 PIRQ E-H lines, rotating with the slot: PIRQ = 4 + (slot + pin - 1) % 4,
  // GSI = 16 + PIRQ (00:01.0 INTA is GSI 21). The pin is read from the device's config space at
  // start(); the routing is the chipset's reset state, which only firmware or a guest would
  // change and neither runs under -S. The qemu test checks it against a real config interrupt.
  Result<unsigned> device_gsi(unsigned index) const;
  // A QMP command for users of this target (recorded in the transcript).
  Result<nlohmann::json> qmp_execute(std::string_view command,
                                     const nlohmann::json& arguments = nullptr);

  // The machine arguments for `setup` (everything but the harness's sockets), as start() uses.
  static Result<std::vector<std::string>> machine_args(const QemuTargetOptions& options,
                                                       const DeviceSetup& setup,
                                                       const std::string& accel);

 private:
  Status usable() const;
  template <class T>
  Result<T> checked(Result<T> r);
  std::string diagnose(const std::string& message);
  void flush_transcript();
  Result<nlohmann::json> qmp(std::string_view command, const nlohmann::json& arguments = nullptr);
  Status launch(const DeviceSetup& setup);
  Status locate_devices(unsigned count);
  Status reset_for_reuse(const DeviceSetup& setup);
  Status wait_migration(std::string_view status, std::string* last);

  QemuTargetOptions options_;
  std::string accel_;
  std::string reproducer_header_;
  std::unique_ptr<QemuProcess> process_;
  std::unique_ptr<LineChannel> qtest_;
  std::unique_ptr<QtestBus> bus_;
  std::unique_ptr<QmpClient> qmp_;
  std::optional<DeviceSetup> setup_;
  std::vector<uint64_t> requested_;  // per device, as last set
  std::vector<unsigned> gsi_;        // per device
  bool busy_ = false;
  std::optional<std::string> failed_;  // why the running QEMU can no longer be used
  std::vector<std::string> transcript_;
};

// Whether /dev/kvm can create a VM for this process.
bool kvm_usable();

}  // namespace vmem::conformance
