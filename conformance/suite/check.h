// A check: a plain function that drives one target through a scenario and judges requirements,
// plus what it needs (a device setup, target capabilities). The CheckContext it gets carries the
// target, a driver per device, the state model, and the verdict sink; every check ends with the
// context comparing plugged_size and STATE over the usable region with the model.
//
// A check returns an error only when the target itself failed (it died, stopped answering, or
// answered something that is not a register value); the runner turns that into FAIL verdicts for
// everything the check covers, with the reason. Device misbehaviour is judged with expect().
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/catalog.h"
#include "conformance/driver/mem_driver.h"
#include "conformance/suite/shadow.h"
#include "conformance/suite/trace_recorder.h"
#include "conformance/suite/verdict.h"
#include "conformance/target/target.h"

namespace vmem::conformance {

class CheckContext;

struct CheckDef {
  std::string name;                 // kebab-case, stable: filters, baselines and reproducers use it
  std::string title;                // one line
  std::vector<std::string> covers;  // requirement IDs it judges
  DeviceSetup setup;
  std::vector<Capability> needs;
  Status (*run)(CheckContext&) = nullptr;
};

// Every check, in the order the suite runs them.
const std::vector<CheckDef>& all_checks();

class CheckContext {
 public:
  CheckContext(const CheckDef& def, const Catalog& catalog, Target& target, MachineLayout layout,
               std::chrono::milliseconds completion_timeout);
  ~CheckContext();

  // Probes every device of the setup (transport and config) and builds its model. The runner
  // calls this before run().
  Status attach();

  Target& target() { return target_; }
  const MachineLayout& layout() const { return layout_; }
  MemDriver& driver(unsigned i = 0) { return *devices_[i].driver; }
  Shadow& shadow(unsigned i = 0) { return devices_[i].shadow; }
  // The configuration read when the check started.
  const WireConfig& initial(unsigned i = 0) const { return devices_[i].initial; }
  unsigned devices() const { return static_cast<unsigned>(devices_.size()); }
  // How long a request may take to complete on this target.
  std::chrono::milliseconds completion_timeout() const { return timeout_; }

  // Initializes device `dev` with `features` (default: what MemDriver picks); anything but
  // status 0x0f is an error that ends the check.
  Status initialize(unsigned dev = 0, std::optional<uint64_t> features = std::nullopt);

  // --- Verdicts ---
  // Judges requirement `id`: PASS when `holds`, else the catalog's outcome for a violation.
  // Returns `holds`, so a check can stop following a path the device already broke.
  bool expect(std::string_view id, bool holds, std::string evidence);
  void info(std::string_view id, std::string evidence);
  void skip(std::string_view id, std::string reason);
  void fail(std::string_view id, std::string evidence);  // for target failures
  const std::vector<Verdict>& verdicts() const { return verdicts_; }

  // --- Requests that keep the model in step ---
  // Sends `r` (padding included) on device `dev`; on a well-formed response the model learns
  // from it. An Exchange that is not a response is returned as is.
  Result<Exchange> send(const WireRequest& r, unsigned dev = 0,
                        const ChainShape& shape = {{24}, {10}, false});
  // A plain request whose well-formed response the check needs; anything else is an error that
  // ends the check (and FAILs what it covers with the reason).
  Result<WireResponse> request(uint16_t type, uint64_t addr, uint16_t nb_blocks, unsigned dev = 0);
  Result<WireResponse> plug(uint64_t addr, uint16_t nb, unsigned dev = 0) {
    return request(VIRTIO_MEM_REQ_PLUG, addr, nb, dev);
  }
  Result<WireResponse> unplug(uint64_t addr, uint16_t nb, unsigned dev = 0) {
    return request(VIRTIO_MEM_REQ_UNPLUG, addr, nb, dev);
  }
  Result<WireResponse> state(uint64_t addr, uint16_t nb, unsigned dev = 0) {
    return request(VIRTIO_MEM_REQ_STATE, addr, nb, dev);
  }
  // A PLUG of blocks [first, first + n) that the check builds on: anything but ACK ends it.
  Status plug_blocks(uint64_t first, uint16_t n, unsigned dev = 0);
  // The gpa of block `b` of device `dev`.
  uint64_t block(uint64_t b, unsigned dev = 0) const {
    return devices_[dev].initial.addr + b * devices_[dev].initial.block_size;
  }

  // --- The host's side, recorded with the requests (device 0) ---
  Status set_requested_size(unsigned dev, uint64_t size);
  Status system_reset();
  Status set_busy(bool busy);
  Status suspend_resume();
  Status refuse_next_populate(unsigned dev);

  // Records device 0's run as a trace (trace_recorder.h) in `profile`; call before attach().
  void record(std::string profile) { recorder_.emplace(std::move(profile)); }
  // The recording so far, or empty.
  std::string recording() const { return recorder_ ? recorder_->text() : std::string(); }

  // Re-probes device `dev` after a system reset cleared its transport (BARs), initializes it, and
  // forgets the model's plugged blocks (the reset unplugged them, DEV-22, judged by the check).
  Status reattach(unsigned dev = 0);

  // The closing comparison with the model (every check ends with it): plugged_size against the
  // model (DEV-3), then STATE over the usable region, bisecting only where the device answers
  // MIXED (DEV-48). Judges only what disagrees, so it adds no PASS noise.
  Status verify_model();

 private:
  struct Device {
    std::unique_ptr<MemDriver> driver;
    Shadow shadow;
    WireConfig initial;
  };
  Status verify_range(unsigned dev, uint64_t first, uint64_t n, int depth);
  // The recorder, when device `dev`'s steps are recorded (device 0's only), or null.
  TraceRecorder* recorder(unsigned dev) { return recorder_ && dev == 0 ? &*recorder_ : nullptr; }
  // Records host action `action` on device `dev` with its outcome `s`, and passes `s` on.
  Status recorded(unsigned dev, std::string_view action, Status s);

  const CheckDef& def_;
  const Catalog& catalog_;
  Target& target_;
  MachineLayout layout_;
  std::chrono::milliseconds timeout_;
  std::vector<Device> devices_;
  std::vector<Verdict> verdicts_;
  std::optional<TraceRecorder> recorder_;
};

// "ACK", "NACK", "BUSY", "ERROR" or "unknown (N)".
std::string resp_name(const WireResponse& r);

}  // namespace vmem::conformance
