// What a user can set on the reference virtio-mem device. Defaults give a 4 GiB region at 4 GiB
// with 2 MiB blocks, like `-device virtio-mem-pci,memdev=...,block-size=2M` on x86 QEMU.
#pragma once

#include <cstdint>
#include <string>

#include "reference/base/result.h"
#include "reference/mem/fault.h"
#include "reference/mem/profile.h"

VMEM_NAMESPACE_BEGIN

enum class Tristate : uint8_t { Auto, On, Off };

struct DeviceOptions {
  uint64_t addr = 4ULL << 30;         // guest-physical start of the region (config `addr`)
  uint64_t region_size = 4ULL << 30;  // config `region_size`
  uint64_t block_size = 2ULL << 20;   // config `block_size`: a power of two >= the page size
  uint16_t node_id = 0;               // config `node_id`, meaningful with ACPI_PXM
  uint64_t requested_size = 0;        // the host's initial target
  // How far the usable region reaches past requested_size; QEMU uses 256 MiB on x86 and s390x,
  // 1 GiB on arm.
  uint64_t usable_extent = 256ULL << 20;
  Profile profile = Profile::Spec;

  // Features offered. `Auto` resolves per profile and backing (docs/profiles.md).
  bool acpi_pxm = false;
  Tristate unplugged_inaccessible = Tristate::Auto;
  Tristate persistent_suspend = Tristate::Auto;
  bool indirect_desc = true;
  bool event_idx = true;
  // Dynamic memslots (QEMU 8.2+): only memslots holding plugged blocks are mapped. They need
  // UNPLUGGED_INACCESSIBLE: a CPU read of an unplugged block in an unmapped memslot could not
  // work (DEV-20). Not available in the qemu-7.2 profile.
  bool dynamic_memslots = false;

  uint16_t queue_size = 128;  // QEMU's size for the guest-request queue
  // A named fault (decisions D6); only the mutants build accepts anything but "" or "none".
  std::string fault;
};

// Checks the options on their own (geometry alignment, sizes, the fault name). Errors name the
// option and the rule, the way QEMU's property setters do.
Status validate(const DeviceOptions& options);

// The region sizes tests call "1 TiB": the build may lower it (decisions D5, TSan).
uint64_t large_region_size();

VMEM_NAMESPACE_END
