#include "reference/mem/machine.h"

VMEM_NAMESPACE_BEGIN

Result<std::unique_ptr<Machine>> Machine::create(const DeviceOptions& options,
                                                 BackingKind device_backing, uint64_t ram_size) {
  VMEM_TRY(validate(options));
  auto m = std::make_unique<Machine>();
  if (ram_size != 0) {
    auto ram = Backing::create(BackingKind::Anonymous, ram_size);
    if (!ram.has_value()) return unexpected(ram.error());
    auto ram_region = m->mem.add_region("ram", kRamBase, std::move(*ram));
    if (!ram_region.has_value()) return unexpected(ram_region.error());
    m->ram = *ram_region;
  }

  Backing* region = &m->empty_region;
  if (options.region_size != 0) {
    auto backing = Backing::create(device_backing, options.region_size);
    if (!backing.has_value()) return unexpected(backing.error());
    auto dev_region = m->mem.add_region("virtio-mem", options.addr, std::move(*backing));
    if (!dev_region.has_value()) return unexpected(dev_region.error());
    m->device_region = *dev_region;
    region = &m->device_region->backing;
  }
  auto dev = VirtioMemDevice::create(options, m->mem, *region);
  if (!dev.has_value()) return unexpected(dev.error());
  m->device = std::move(*dev);
  return m;
}

VMEM_NAMESPACE_END
