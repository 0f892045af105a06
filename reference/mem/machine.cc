#include "reference/mem/machine.h"

VMEM_NAMESPACE_BEGIN

Result<std::unique_ptr<Machine>> Machine::create(const DeviceOptions& options,
                                                 BackingKind device_backing) {
  VMEM_TRY(validate(options));
  auto m = std::make_unique<Machine>();
  auto ram = Backing::create(BackingKind::Anonymous, kRamSize);
  if (!ram.has_value()) return unexpected(ram.error());
  auto ram_region = m->mem.add_region("ram", kRamBase, std::move(*ram));
  if (!ram_region.has_value()) return unexpected(ram_region.error());
  m->ram = *ram_region;

  auto backing = Backing::create(device_backing, options.region_size);
  if (!backing.has_value()) return unexpected(backing.error());
  if (options.region_size != 0) {
    auto dev_region = m->mem.add_region("virtio-mem", options.addr, std::move(*backing));
    if (!dev_region.has_value()) return unexpected(dev_region.error());
    m->device_region = *dev_region;
    auto dev = VirtioMemDevice::create(options, m->mem, m->device_region->backing);
    if (!dev.has_value()) return unexpected(dev.error());
    m->device = std::move(*dev);
  } else {
    // An empty region: nothing to map, but the device still needs a backing object.
    static thread_local Backing empty = std::move(*Backing::create(BackingKind::Null, 0));
    auto dev = VirtioMemDevice::create(options, m->mem, empty);
    if (!dev.has_value()) return unexpected(dev.error());
    m->device = std::move(*dev);
  }
  return m;
}

VMEM_NAMESPACE_END
