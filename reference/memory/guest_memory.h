// A guest-physical address space: non-overlapping regions, each backed by host memory.
//
// Devices reach guest memory only through this class, by guest-physical address, with every
// access bounds-checked: a descriptor that points outside every region is an error value, never
// a host fault. An access may span adjacent regions. Regions with a null backing exist in the
// address space but hold no memory; accessing them is an error.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "reference/base/result.h"
#include "reference/memory/backing.h"

VMEM_NAMESPACE_BEGIN

enum class MemoryError : uint8_t {
  Unmapped,   // some byte of the range lies in no region
  NoBacking,  // some byte lies in a region with a null backing
};
const char* to_string(MemoryError e);

struct MemoryRegion {
  std::string name;
  uint64_t gpa = 0;
  Backing backing;
  uint64_t size() const { return backing.size(); }
  uint64_t end() const { return gpa + backing.size(); }
};

class GuestMemory {
 public:
  GuestMemory() = default;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Adds a region; fails if it overlaps another one or wraps around 2^64. The returned reference
  // stays valid for the life of this object.
  Result<MemoryRegion*> add_region(std::string name, uint64_t gpa, Backing backing);
  MemoryRegion* find_region(std::string_view name) const;

  Result<void, MemoryError> read(uint64_t gpa, std::span<uint8_t> out) const;
  Result<void, MemoryError> write(uint64_t gpa, std::span<const uint8_t> in);
  // Whether [gpa, gpa + len) is fully accessible, without touching it.
  Result<void, MemoryError> check_range(uint64_t gpa, uint64_t len) const;

  // The host address of [gpa, gpa + len) when one region holds all of it, else nullptr. Inline:
  // it is on every virtqueue access.
  uint8_t* host_address(uint64_t gpa, uint64_t len) const {
    for (const auto& r : regions_) {
      const uint64_t offset = gpa - r->gpa;
      if (gpa >= r->gpa && offset < r->size()) {
        if (r->backing.data() == nullptr || len > r->size() - offset) return nullptr;
        return r->backing.data() + offset;
      }
    }
    return nullptr;
  }

  std::span<const std::unique_ptr<MemoryRegion>> regions() const { return regions_; }

 private:
  template <class Fn>
  Result<void, MemoryError> for_each_piece(uint64_t gpa, uint64_t len, Fn&& fn) const;
  const MemoryRegion* region_containing(uint64_t gpa) const;

  std::vector<std::unique_ptr<MemoryRegion>> regions_;  // sorted by gpa
};

VMEM_NAMESPACE_END
