#include "reference/memory/guest_memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

VMEM_NAMESPACE_BEGIN

const char* to_string(MemoryError e) {
  switch (e) {
    case MemoryError::Unmapped:
      return "guest address not backed by any region";
    case MemoryError::NoBacking:
      return "guest address in a region without memory (null backing)";
  }
  return "?";
}

Result<MemoryRegion*> GuestMemory::add_region(std::string name, uint64_t gpa, Backing backing) {
  const uint64_t size = backing.size();
  if (size == 0) return unexpected(Error{fmt::format("region '{}' is empty", name)});
  if (gpa + size < gpa) {
    return unexpected(Error{fmt::format("region '{}' at {:#x} wraps around 2^64", name, gpa)});
  }
  for (const auto& r : regions_) {
    if (gpa < r->end() && r->gpa < gpa + size) {
      return unexpected(Error{fmt::format("region '{}' [{:#x}, {:#x}) overlaps '{}' [{:#x}, {:#x})",
                                          name, gpa, gpa + size, r->name, r->gpa, r->end())});
    }
  }
  auto region =
      std::make_unique<MemoryRegion>(MemoryRegion{std::move(name), gpa, std::move(backing)});
  MemoryRegion* raw = region.get();
  auto pos = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                              [](uint64_t a, const auto& r) { return a < r->gpa; });
  regions_.insert(pos, std::move(region));
  return raw;
}

MemoryRegion* GuestMemory::find_region(std::string_view name) const {
  for (const auto& r : regions_) {
    if (r->name == name) return r.get();
  }
  return nullptr;
}

const MemoryRegion* GuestMemory::region_containing(uint64_t gpa) const {
  // Few regions (RAM below and above 4 GiB, a device region or two): a linear scan wins.
  for (const auto& r : regions_) {
    if (gpa >= r->gpa && gpa - r->gpa < r->size()) return r.get();
  }
  return nullptr;
}

template <class Fn>
Result<void, MemoryError> GuestMemory::for_each_piece(uint64_t gpa, uint64_t len, Fn&& fn) const {
  uint64_t done = 0;
  while (done < len) {
    const uint64_t at = gpa + done;
    if (at < gpa) return unexpected(MemoryError::Unmapped);  // wrapped around 2^64
    const MemoryRegion* r = region_containing(at);
    if (r == nullptr) return unexpected(MemoryError::Unmapped);
    if (r->backing.data() == nullptr) return unexpected(MemoryError::NoBacking);
    const uint64_t offset = at - r->gpa;
    const uint64_t n = std::min(len - done, r->size() - offset);
    fn(r->backing.data() + offset, done, n);
    done += n;
  }
  return {};
}

Result<void, MemoryError> GuestMemory::check_range(uint64_t gpa, uint64_t len) const {
  return for_each_piece(gpa, len, [](uint8_t*, uint64_t, uint64_t) {});
}

Result<void, MemoryError> GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  if (uint8_t* p = host_address(gpa, out.size())) {
    std::memcpy(out.data(), p, out.size());
    return {};
  }
  VMEM_TRY(check_range(gpa, out.size()));
  return for_each_piece(gpa, out.size(), [&](uint8_t* host, uint64_t done, uint64_t n) {
    std::memcpy(out.data() + done, host, n);
  });
}

Result<void, MemoryError> GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) {
  if (uint8_t* p = host_address(gpa, in.size())) {
    std::memcpy(p, in.data(), in.size());
    return {};
  }
  // Check first so that a failing write changes nothing.
  VMEM_TRY(check_range(gpa, in.size()));
  return for_each_piece(gpa, in.size(), [&](uint8_t* host, uint64_t done, uint64_t n) {
    std::memcpy(host, in.data() + done, n);
  });
}

VMEM_NAMESPACE_END
