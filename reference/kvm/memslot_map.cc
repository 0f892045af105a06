#include "reference/kvm/memslot_map.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include "reference/mem/consumer_rules.h"
#include "reference/mem/device.h"

VMEM_NAMESPACE_BEGIN

namespace {
// From <linux/kvm.h>; spelled out so the build does not need kernel headers.
constexpr unsigned long kKvmCheckExtension = 0xae03;  // _IO(KVMIO, 0x03)
constexpr int kKvmCapNrMemslots = 10;
}  // namespace

uint64_t kvm_max_memslots() {
  const int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return 512;
  const int n = ioctl(fd, kKvmCheckExtension, kKvmCapNrMemslots);
  close(fd);
  return n > 0 ? static_cast<uint64_t>(n) : 512;
}

MemslotMap::MemslotMap(const VirtioMemDevice& device, bool dynamic, uint64_t limit)
    : device_(device), dynamic_(dynamic) {
  const uint64_t region = device.options().region_size;
  const auto g = rules::decide_memslots(U64{}, region, device.options().block_size,
                                        dynamic ? limit : uint64_t{1}, device.fault());
  memslot_size_ = g.size;
  const bool empty = region == 0;
  active_.assign(empty ? 0 : g.count, false);
  // A single memslot is mapped for the life of the device, as the whole region is without
  // dynamic memslots.
  if (!dynamic_ || active_.size() == 1) std::fill(active_.begin(), active_.end(), true);
  if (active_.size() == 1) dynamic_ = false;
}

Section MemslotMap::section_of(uint64_t index) const {
  const uint64_t region = device_.options().region_size;
  const uint64_t offset = index * memslot_size_;
  return Section{offset, std::min(memslot_size_, region - offset)};
}

uint64_t MemslotMap::active_count() const {
  return static_cast<uint64_t>(std::count(active_.begin(), active_.end(), true));
}

Status MemslotMap::add_listener(MemoryListener& l) {
  const auto quiet = device_.quiesce();
  for (uint64_t i = 0; i < active_.size(); ++i) {
    if (!active_[i]) continue;
    auto r = l.region_add(section_of(i));
    if (!r.has_value()) {
      for (uint64_t j = 0; j < i; ++j) {
        if (active_[j]) l.region_del(section_of(j));
      }
      return r;
    }
  }
  listeners_.push_back(&l);
  return ok();
}

Status MemslotMap::map(uint64_t index) {
  const Section s = section_of(index);
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    auto r = listeners_[i]->region_add(s);
    if (!r.has_value()) {
      for (std::size_t j = 0; j < i; ++j)
        listeners_[j]->region_del(s);
      return r;
    }
  }
  active_[index] = true;
  return ok();
}

void MemslotMap::unmap(uint64_t index) {
  const Section s = section_of(index);
  for (MemoryListener* l : listeners_)
    l->region_del(s);
  active_[index] = false;
}

Status MemslotMap::activate(uint64_t offset, uint64_t size) {
  if (!dynamic_ || size == 0) return ok();
  const auto r = rules::memslots_of(U64{}, offset, size, memslot_size_, device_.fault());
  std::vector<uint64_t> mapped;
  for (uint64_t i = r.first; i < r.end && i < active_.size(); ++i) {
    if (active_[i]) continue;
    auto m = map(i);
    if (!m.has_value()) {
      for (uint64_t j : mapped)
        unmap(j);
      return m;
    }
    mapped.push_back(i);
  }
  return ok();
}

void MemslotMap::deactivate_unplugged(uint64_t offset, uint64_t size) {
  if (!dynamic_ || size == 0) return;
  const uint64_t bs = device_.options().block_size;
  const auto r = rules::memslots_of(U64{}, offset, size, memslot_size_);
  for (uint64_t i = r.first; i < r.end && i < active_.size(); ++i) {
    if (!active_[i]) continue;
    const Section s = section_of(i);
    const bool empty = device_.bitmap().is_range_unplugged(s.offset / bs, s.size / bs);
    if (empty || faulty(device_.fault(), Fault::MemslotDeactivatedWhilePlugged)) unmap(i);
  }
}

VMEM_NAMESPACE_END
