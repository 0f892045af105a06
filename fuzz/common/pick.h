// How the request-level fuzz targets (ops, qemu_diff) pick a request's address and size: near
// the edges where range checks go wrong, now and then anywhere. One decoder for both, so a seed
// means the same in each.
#pragma once

#include <cstdint>

#include "fuzz/common/fuzz_support.h"
#include "reference/mem/wire.h"

namespace vmem::fuzz {

// An address near one of the edges that matter, or anywhere.
inline uint64_t pick_addr(InputBytes& in, const WireConfig& c) {
  const uint8_t sel = in.take<uint8_t>();
  const auto blocks = static_cast<int16_t>(in.take<uint16_t>() % 64) - 32;
  uint64_t base = 0;
  switch (sel % 8) {
    case 0:
      base = c.addr;
      break;
    case 1:
      base = c.addr + c.usable_region_size;
      break;
    case 2:
      base = c.addr + c.requested_size;
      break;
    case 3:
      base = c.addr + c.region_size;
      break;
    case 4:
      base = 0 - c.block_size;
      break;
    case 5:
      base = c.addr + (in.take<uint32_t>() % (c.region_size / c.block_size + 1)) * c.block_size;
      break;
    case 6:
      return in.take<uint64_t>();
    case 7:
      base = c.addr + c.plugged_size;
      break;
  }
  uint64_t addr = base + static_cast<uint64_t>(static_cast<int64_t>(blocks)) * c.block_size;
  if (sel & 0x80) addr += in.take<uint16_t>() % c.block_size;  // misaligned now and then
  return addr;
}

inline uint16_t pick_nb(InputBytes& in) {
  const uint8_t sel = in.take<uint8_t>();
  switch (sel % 6) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 0;
    case 3:
      return 0xffff;
    case 4:
      return static_cast<uint16_t>(1 + sel / 6);
    default:
      // Any count, log-uniformly: a plug of thousands of blocks maps thousands of DMA entries,
      // so uniform counts would spend most executions on a few huge requests.
      return static_cast<uint16_t>(in.take<uint16_t>() >> (sel / 6 % 16));
  }
}

}  // namespace vmem::fuzz
