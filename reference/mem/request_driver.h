// A minimal virtio-mem driver that talks to a VirtioMemDevice directly, without a transport:
// the generic initialization sequence, then one request at a time on the guest-request queue.
// Tests, the trace replayer and the CLI's smoke run use it; the conformance suite has its own
// driver that goes through real transports.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "reference/mem/device.h"
#include "reference/virtqueue/driver_queue.h"

VMEM_NAMESPACE_BEGIN

struct DriverResult {
  Response response;
  uint32_t used_len = 0;
};

class RequestDriver {
 public:
  // The queue's rings and buffers are placed at `queue_base` in guest memory.
  RequestDriver(VirtioMemDevice& device, uint64_t queue_base);

  // Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK. Features default to
  // everything offered. Returns the status read back at the end.
  uint8_t initialize(std::optional<uint64_t> features = std::nullopt);

  // Sends one request split as `shape` says, notifies, and reads the response. An error says
  // why no response came (e.g. the device set NEEDS_RESET).
  Result<DriverResult> send(const WireRequest& request,
                            const ChainShape& shape = {{24}, {10}, false});
  // Convenience: a plain 24/10 chain; the response alone, or why none came.
  Result<Response> request(uint16_t type, uint64_t addr = 0, uint16_t nb_blocks = 0);

  // How the driver notifies the device; by default a direct notify_queue(0). With an iothread,
  // IoThread::kick_and_wait.
  void set_notifier(std::function<void()> notify) { notify_ = std::move(notify); }

  // After migration: continue on the rings already in guest memory.
  void adopt_queue_state() { queue_.adopt(); }

  DriverQueue& queue() { return queue_; }
  VirtioMemDevice& device() { return device_; }

 private:
  VirtioMemDevice& device_;
  DriverQueue queue_;
  uint16_t next_slot_ = 0;
  std::function<void()> notify_;
};

VMEM_NAMESPACE_END
