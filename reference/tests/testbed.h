// Shared set-up for the reference's tests: a machine with the device, and a driver on its queue.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"

namespace vmem::testing {

inline constexpr uint64_t kMiB = 1ULL << 20;
inline constexpr uint64_t kGiB = 1ULL << 30;
inline constexpr uint64_t kQueueBase = 1 * kMiB;

struct Testbed {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<RequestDriver> driver;

  VirtioMemDevice& dev() { return *machine->device; }
  RequestDriver& drv() { return *driver; }
  WireConfig cfg() { return machine->device->config(); }
  uint64_t block(uint64_t i) {
    return machine->device->options().addr + i * machine->device->options().block_size;
  }

  // A request through the virtqueue; fails the test if no response comes.
  Response req(uint16_t type, uint64_t addr = 0, uint16_t nb = 0) {
    auto r = driver->request(type, addr, nb);
    EXPECT_TRUE(r.has_value()) << (r.has_value() ? "" : r.error().message);
    return r.has_value() ? *r : Response{RespType::Error, BlockState::Mixed};
  }
  RespType plug(uint64_t addr, uint16_t nb) { return req(VIRTIO_MEM_REQ_PLUG, addr, nb).type; }
  RespType unplug(uint64_t addr, uint16_t nb) { return req(VIRTIO_MEM_REQ_UNPLUG, addr, nb).type; }
  RespType unplug_all() { return req(VIRTIO_MEM_REQ_UNPLUG_ALL).type; }
  Response state(uint64_t addr, uint16_t nb) { return req(VIRTIO_MEM_REQ_STATE, addr, nb); }
};

inline Testbed make_testbed(const DeviceOptions& o, BackingKind kind = BackingKind::Anonymous,
                            bool init = true) {
  Testbed t;
  auto m = Machine::create(o, kind);
  if (!m.has_value()) {
    ADD_FAILURE() << m.error().message;
    return t;
  }
  t.machine = std::move(*m);
  t.driver = std::make_unique<RequestDriver>(*t.machine->device, kQueueBase);
  if (init) {
    const uint8_t status = t.driver->initialize();
    EXPECT_EQ(status, 0x0f) << "driver initialization failed";
  }
  return t;
}

// A block bitmap's words, as the word-model machines (block_state.h, ...) hold them.
inline std::vector<uint64_t> words_of(const BlockBitmap& b) {
  return {b.words().begin(), b.words().end()};
}

inline DeviceOptions small_options(Profile p = Profile::Spec) {
  DeviceOptions o;
  o.addr = 4 * kGiB;
  o.region_size = 1 * kGiB;
  o.block_size = 2 * kMiB;
  o.requested_size = 128 * kMiB;
  o.profile = p;
  return o;
}

}  // namespace vmem::testing
