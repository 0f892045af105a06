// A check's run as a trace (docs/trace-format.md, decisions D7): the device the check started
// with, the driver's initializations, every request the suite sent and what came back, the
// host's actions and the closing configuration, so that `vmemcheck prove --trace` can check a
// conformance run on any target (the reference, QEMU, an adapter) against the block-state
// transition relation, and `vmemcheck replay` can run it on the reference.
//
// It records device 0 only (a trace describes one device), and only what the CheckContext does:
// the few raw exchanges checks make past the context (malformed requests the device must refuse)
// are not in it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "conformance/driver/mem_driver.h"
#include "reference/mem/wire.h"

namespace vmem::conformance {

class TraceRecorder {
 public:
  // `profile` is the profile the target is expected to follow (spec, qemu, qemu-7.2): the one
  // the trace's `device` line names and `prove --trace` checks against.
  explicit TraceRecorder(std::string profile) : profile_(std::move(profile)) {}

  void device(const WireConfig& c);
  // The driver initialized the device. A check that initializes it by hand, register by
  // register, is recorded with an `init` before its first request: a request implies it.
  void init() {
    line("init");
    initialized_ = true;
  }
  void request(const WireRequest& r, const ChainShape& shape, const Exchange& x);
  // A host action (`resize 0x...`, `system_reset`, `busy on`, `wakeup`, `refuse_populate`) and
  // whether it worked. The first `refuse_populate` is preceded by a `consumers` line, which its
  // replay needs.
  void host(std::string_view action, bool ok);
  void config(const WireConfig& c);
  // A `#` line: the verdicts a check judged against the device, where it judged them.
  void comment(std::string_view text);

  const std::string& text() const { return text_; }

 private:
  void line(std::string_view l);

  std::string profile_;
  std::string text_;
  bool initialized_ = false;  // since the start or the last system reset
  bool consumers_ = false;    // a `consumers` line was written
};

}  // namespace vmem::conformance
