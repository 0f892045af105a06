// Shared set-up for the consumer tests: a device with its discard manager and the invariant
// checker, plus helpers to register watched listeners. Used with either reference library.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "reference/check/invariants.h"
#include "reference/discard/discard_manager.h"
#include "reference/discard/recording_listener.h"
#include "reference/tests/testbed.h"

namespace vmem::testing {

inline constexpr uint64_t kBlock = 2 * kMiB;

inline Section blocks(uint64_t first, uint64_t n) {
  return {first * kBlock, n * kBlock};
}

struct ConsumerRig {
  Testbed t;
  DiscardPermission permission;
  std::unique_ptr<DiscardManager> manager;
  std::unique_ptr<InvariantChecker> checker;

  explicit ConsumerRig(const DeviceOptions& o = small_options()) {
    t = make_testbed(o);
    manager = std::move(*DiscardManager::attach(t.dev(), permission));
    checker = std::make_unique<InvariantChecker>(t.dev());
  }
  uint64_t nb_blocks() const { return t.machine->device->bitmap().size(); }

  // A recording listener, registered for `s` and watched by the checker.
  std::unique_ptr<RecordingListener> listener(const std::string& name, Section s,
                                              bool double_discard = false) {
    auto l = std::make_unique<RecordingListener>(name, nb_blocks(), kBlock, double_discard);
    EXPECT_TRUE(manager->register_listener(*l, s).has_value());
    checker->watch(*l, s);
    expect_consistent("after registering " + name);
    return l;
  }

  // What the checker reports, in incremental and then full mode.
  std::vector<Violation> violations() {
    std::vector<Violation> all = checker->check_incremental();
    for (Violation& v : checker->check_full())
      all.push_back(std::move(v));
    return all;
  }

  void expect_consistent(const std::string& step) {
    for (const Violation& v : violations())
      ADD_FAILURE() << step << ": " << to_string(v);
  }

  // Requests through the virtqueue, each followed by the invariant check (both modes).
  RespType plug(uint64_t gpa, uint16_t nb) { return checked("PLUG", t.plug(gpa, nb), gpa, nb); }
  RespType unplug(uint64_t gpa, uint16_t nb) {
    return checked("UNPLUG", t.unplug(gpa, nb), gpa, nb);
  }
  RespType unplug_all() { return checked("UNPLUG_ALL", t.unplug_all(), 0, 0); }

 private:
  RespType checked(const char* what, RespType r, uint64_t gpa, uint16_t nb) {
    expect_consistent(std::string("after ") + what + " " + std::to_string(gpa) + "+" +
                      std::to_string(nb));
    return r;
  }

 public:
};

}  // namespace vmem::testing
