// Any VMM behind the adapter protocol (docs/adapter-protocol.md): `adapter:CMD` runs CMD through
// /bin/sh and speaks to it on its stdin and stdout. The guest's side goes through QtestBus (the
// protocol reuses qtest's grammar, so QEMU and adapters share one code path), the host's side
// through `host ...` verbs, and the capabilities come from the handshake.
//
// Promises: every exchange is bounded (LineChannel); an adapter that dies, hangs or answers
// garbage makes the failing call return an error saying so, and the next start() spawns a fresh
// one; the adapter never outlives the target (ChildProcess).
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "conformance/target/target.h"

namespace vmem::conformance {

class LineChannel;
class QtestBus;
class ChildProcess;

struct AdapterTargetOptions {
  std::string command;  // run as /bin/sh -c COMMAND
  std::chrono::milliseconds call_timeout{5000};
  bool record_replies = false;  // replies as comments in the transcript
};

class AdapterTarget final : public Target {
 public:
  // Spawns the adapter and shakes hands.
  static Result<std::unique_ptr<AdapterTarget>> spawn(const AdapterTargetOptions& options);
  // An adapter already connected on these descriptors (a socket, or a test's in-process server);
  // takes ownership of them.
  static Result<std::unique_ptr<AdapterTarget>> connect(int read_fd, int write_fd,
                                                        const AdapterTargetOptions& options);
  ~AdapterTarget() override;

  std::string name() const override { return name_; }
  bool has(Capability c) const override { return caps_.count(c) != 0; }
  Result<MachineLayout> start(const DeviceSetup& setup) override;

  Result<uint32_t> io_read(uint16_t port, unsigned size) override;
  Status io_write(uint16_t port, unsigned size, uint32_t value) override;
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) override;
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t value) override;
  Status mem_read(uint64_t gpa, std::span<uint8_t> out) override;
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in) override;
  Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) override;
  Result<bool> interrupt_asserted(unsigned index) override;

  Status set_requested_size(unsigned index, uint64_t size) override;
  Status system_reset() override;
  Status set_busy(bool busy) override;
  Status suspend_resume() override;
  Status refuse_next_populate(unsigned index) override;

  std::vector<std::string> take_transcript() override;
  std::string reproducer_header() const override;

 private:
  explicit AdapterTarget(AdapterTargetOptions options);
  Status attach(int read_fd, int write_fd);
  Status respawn();
  Status host(const std::string& line);
  Status usable() const;

  AdapterTargetOptions options_;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<LineChannel> channel_;
  std::unique_ptr<QtestBus> bus_;
  std::set<Capability> caps_;
  std::string name_ = "adapter";
};

}  // namespace vmem::conformance
