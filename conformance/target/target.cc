#include "conformance/target/target.h"

#include <fmt/format.h>

namespace vmem::conformance {

const char* to_string(Capability c) {
  switch (c) {
    case Capability::SetRequestedSize:
      return "host resize";
    case Capability::SystemReset:
      return "system reset";
    case Capability::BusyWindow:
      return "busy window";
    case Capability::SuspendResume:
      return "suspend/wake-up";
    case Capability::Interrupts:
      return "interrupt line";
    case Capability::NumaNode:
      return "NUMA node";
    case Capability::TwoDevices:
      return "two devices";
    case Capability::UnpluggedInaccessible:
      return "UNPLUGGED_INACCESSIBLE offer";
    case Capability::RefusePopulate:
      return "refused populate";
  }
  return "?";
}

const char* to_string(Transport t) {
  return t == Transport::Pci ? "virtio-pci" : "virtio-mmio";
}

std::string describe(const DeviceSetup& s) {
  return fmt::format("{} x region {:#x}, block {:#x}, requested {:#x}{}{}", s.devices,
                     s.region_size, s.block_size, s.requested_size,
                     s.acpi_pxm ? fmt::format(", node {}", s.node_id) : "",
                     s.unplugged_inaccessible ? ", unplugged-inaccessible" : "");
}

}  // namespace vmem::conformance
