#include "reference/mem/device_options.h"

#include <fmt/format.h>

#include <bit>

#include "reference/virtqueue/split_queue.h"

#ifndef VMEM_LARGE_REGION_GIB
#define VMEM_LARGE_REGION_GIB 1024
#endif

VMEM_NAMESPACE_BEGIN

namespace {

// One bit per block must stay a reasonable allocation: 2^32 blocks is a 512 MiB bitmap.
constexpr uint64_t kMaxBlocks = 1ULL << 32;
constexpr uint64_t kMinBlockSize = 4096;

}  // namespace

uint64_t large_region_size() {
  return uint64_t{VMEM_LARGE_REGION_GIB} << 30;
}

Status validate(const DeviceOptions& o) {
  if (o.block_size < kMinBlockSize || !std::has_single_bit(o.block_size)) {
    return unexpected(Error{fmt::format("block-size {:#x} must be a power of two of at least {:#x}",
                                        o.block_size, kMinBlockSize)});
  }
  const uint64_t mask = o.block_size - 1;
  if (o.addr & mask) {
    return unexpected(Error{
        fmt::format("addr {:#x} must be a multiple of block-size {:#x}", o.addr, o.block_size)});
  }
  if (o.region_size & mask) {
    return unexpected(Error{fmt::format("region size {:#x} must be a multiple of block-size {:#x}",
                                        o.region_size, o.block_size)});
  }
  if (o.addr + o.region_size < o.addr) {
    return unexpected(
        Error{fmt::format("region [{:#x}, +{:#x}) wraps around 2^64", o.addr, o.region_size)});
  }
  if (o.region_size / o.block_size > kMaxBlocks) {
    return unexpected(Error{fmt::format("{} blocks are more than the supported {}",
                                        o.region_size / o.block_size, kMaxBlocks)});
  }
  if (o.requested_size & mask) {
    return unexpected(Error{
        fmt::format("'requested-size' has to be multiples of 'block-size' ({:#x})", o.block_size)});
  }
  if (o.requested_size > o.region_size) {
    return unexpected(Error{fmt::format(
        "'requested-size' cannot exceed the memory backend size({:#x})", o.region_size)});
  }
  if (o.queue_size == 0 || o.queue_size > kMaxQueueSize || !std::has_single_bit(o.queue_size)) {
    return unexpected(Error{
        fmt::format("queue size {} must be a power of two up to {}", o.queue_size, kMaxQueueSize)});
  }
  if (o.dynamic_memslots) {
    if (o.profile == Profile::Qemu72) {
      return unexpected(Error{"dynamic-memslots does not exist in QEMU 7.2 (profile qemu-7.2)"});
    }
    if (o.unplugged_inaccessible == Tristate::Off) {
      return unexpected(
          Error{"'dynamic-memslots' is only supported with 'unplugged-inaccessible=on'"});
    }
  }
  const auto fault = fault_from_name(o.fault);
  if (!fault) return unexpected(Error{fmt::format("unknown fault '{}'", o.fault)});
  if (*fault != Fault::None && !kMutantsBuild) {
    return unexpected(Error{fmt::format(
        "fault '{}' exists only in the mutants build (vmem_reference_mutants)", o.fault)});
  }
  return ok();
}

VMEM_NAMESPACE_END
