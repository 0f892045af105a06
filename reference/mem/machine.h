// A minimal machine around the reference device: guest RAM at 0 for rings and buffers, and the
// device region at its configured address. Tests, the trace replayer, benchmarks and the CLI
// all build the device this way, so they agree on the layout.
#pragma once

#include <memory>

#include "reference/mem/device.h"
#include "reference/memory/guest_memory.h"

VMEM_NAMESPACE_BEGIN

struct Machine {
  static constexpr uint64_t kRamBase = 0;
  static constexpr uint64_t kRamSize = 64ULL << 20;

  // `ram_size` 0 leaves guest RAM out: enough for a device driven request by request through
  // VirtioMemDevice::process(), with no rings, and cheap to build once per fuzz input.
  static Result<std::unique_ptr<Machine>> create(
      const DeviceOptions& options, BackingKind device_backing = BackingKind::Anonymous,
      uint64_t ram_size = kRamSize);

  GuestMemory mem;
  MemoryRegion* ram = nullptr;            // null without RAM
  MemoryRegion* device_region = nullptr;  // null for an empty region (region_size 0, DEV-7)
  Backing empty_region = std::move(*Backing::create(BackingKind::Null, 0));
  std::unique_ptr<VirtioMemDevice> device;
};

VMEM_NAMESPACE_END
