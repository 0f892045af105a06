#include "reference/check/invariants.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

VMEM_NAMESPACE_BEGIN

namespace {

// Checking residency reads 8 bytes of /proc/self/pagemap per 4 KiB page; past this much
// unplugged memory per check, the whole-mapping smaps figure is used instead (a bound, not exact).
constexpr uint64_t kExactResidencyLimit = 64ULL << 30;

}  // namespace

std::string to_string(const Violation& v) {
  return fmt::format("{} violated at {}: {}", v.invariant, v.where, v.state);
}

void InvariantChecker::unwatch(const RecordingListener& l) {
  std::erase_if(views_, [&](const View& v) { return v.listener == &l; });
}

std::string InvariantChecker::describe() const {
  const WireConfig c = device_.config();
  return fmt::format(
      "block_size={:#x} addr={:#x} region_size={:#x} usable_region_size={:#x} plugged_size={:#x} "
      "requested_size={:#x} plugged_blocks={}",
      c.block_size, c.addr, c.region_size, c.usable_region_size, c.plugged_size, c.requested_size,
      device_.bitmap().count());
}

std::vector<Violation> InvariantChecker::check_full() {
  const auto quiet = device_.quiesce();
  (void)device_.take_touched();
  return check(0, device_.bitmap().size());
}

std::vector<Violation> InvariantChecker::check_incremental() {
  const auto quiet = device_.quiesce();
  const TouchedBlocks t = device_.take_touched();
  if (t.empty()) return check(0, 0);
  return check(t.first, std::min(t.end, device_.bitmap().size()));
}

// Callers hold quiesce(): invariants hold at quiescent points (decisions D12).
std::vector<Violation> InvariantChecker::check(uint64_t first, uint64_t end) {
  std::vector<Violation> out;
  check_sizes(out);
  for (const View& v : views_)
    check_view(*v.listener, v.section, first, end, out);
  for (const VfioMemoryListener* vfio : vfio_)
    check_vfio(*vfio, first, end, out);
  if (memslots_ != nullptr) check_memslots(first, end, out);
  check_residency(first, end, out);
  return out;
}

void InvariantChecker::check_sizes(std::vector<Violation>& out) const {
  const WireConfig c = device_.config();
  const BlockBitmap& b = device_.bitmap();
  if (c.block_size == 0 || !std::has_single_bit(c.block_size)) {
    out.push_back({"I4 block_size is a power of two", "config", describe()});
    return;
  }
  const uint64_t mask = c.block_size - 1;
  for (const auto& [name, v] :
       {std::pair{"addr", c.addr}, std::pair{"region_size", c.region_size},
        std::pair{"usable_region_size", c.usable_region_size},
        std::pair{"plugged_size", c.plugged_size}, std::pair{"requested_size", c.requested_size}}) {
    if (v & mask) out.push_back({"I4 sizes are block-aligned", name, describe()});
  }
  if (c.plugged_size != b.count() * c.block_size) {
    out.push_back({"I1 plugged_size = popcount x block_size", "config",
                   fmt::format("plugged_size={:#x} but the bitmap holds {} blocks ({:#x}); {}",
                               c.plugged_size, b.count(), b.count() * c.block_size, describe())});
  }
  if (!(c.requested_size <= c.usable_region_size && c.usable_region_size <= c.region_size)) {
    out.push_back({"I3 requested <= usable <= region", "config", describe()});
  }
  const uint64_t usable_blocks = c.usable_region_size / c.block_size;
  if (usable_blocks < b.size()) {
    const uint64_t beyond = b.find_next(true, usable_blocks, b.size());
    if (beyond != b.size()) {
      out.push_back({"I2 plugged blocks lie in the usable region",
                     fmt::format("block {} (gpa {:#x})", beyond, c.addr + beyond * c.block_size),
                     describe()});
    }
  }
}

void InvariantChecker::check_view(const RecordingListener& l, const Section& s, uint64_t first,
                                  uint64_t end, std::vector<Violation>& out) const {
  const uint64_t bs = device_.options().block_size;
  const uint64_t lo = std::max(first, s.offset / bs);
  const uint64_t hi = std::min(end, s.end() / bs);
  const BlockBitmap& plugged = device_.bitmap();
  const BlockBitmap& view = l.view();
  if (const uint64_t b = plugged.find_difference(view, lo, hi); b < hi) {
    out.push_back(
        {"I5 listener view = plugged ∩ section",
         fmt::format("listener '{}', block {} (gpa {:#x})", l.name(), b,
                     device_.options().addr + b * bs),
         fmt::format("device says {}, listener says {}; section [{:#x}, +{:#x}); {}",
                     plugged.test(b) ? "plugged" : "unplugged",
                     view.test(b) ? "populated" : "discarded", s.offset, s.size, describe())});
    return;  // one report per listener is enough to act on
  }
  // Nothing outside the section may be populated. Searched through the view's summary rather
  // than counted: sections span much of the region, and incremental checks run this after
  // every operation.
  const uint64_t s_first = s.offset / bs;
  const uint64_t s_end = s.end() / bs;
  const bool populated_outside = view.find_next(true, 0, s_first) != s_first ||
                                 view.find_next(true, s_end, view.size()) != view.size();
  if (s.size != 0 && populated_outside) {
    const uint64_t outside = view.count() - view.count_plugged(s_first, s.size / bs);
    out.push_back({"I5 listener view = plugged ∩ section", fmt::format("listener '{}'", l.name()),
                   fmt::format("{} blocks populated outside its section [{:#x}, +{:#x})", outside,
                               s.offset, s.size)});
  }
}

void InvariantChecker::check_vfio(const VfioMemoryListener& vfio, uint64_t first, uint64_t end,
                                  std::vector<Violation>& out) const {
  const VfioType1Container& c = vfio.container();
  const auto& maps = c.mappings();
  const uint64_t bs = device_.options().block_size;
  const uint64_t addr = device_.options().addr;
  if (maps.size() > c.dma_entry_limit()) {
    out.push_back({"I6 mappings <= entry limit", "container",
                   fmt::format("{} mappings, limit {}", maps.size(), c.dma_entry_limit())});
  }
  uint64_t pinned = 0;
  for (const auto& [iova, m] : maps)
    pinned += m.size;
  if (pinned != c.pinned_bytes()) {
    out.push_back({"I6 pinned bytes = mapped bytes", "container",
                   fmt::format("pinned {:#x}, mapped {:#x}", c.pinned_bytes(), pinned)});
  }
  // Mappings of device memory that no listener accounts for: left behind by an unregister or a
  // failed roll-back, they keep memory pinned that the guest gave back.
  const uint64_t lo_gpa = addr + first * bs;
  const uint64_t hi_gpa = addr + std::min(end, device_.bitmap().size()) * bs;
  for (auto it = maps.lower_bound(lo_gpa); it != maps.end() && it->first < hi_gpa; ++it) {
    const uint64_t off = it->first - addr;
    const bool owned = std::any_of(
        vfio.listeners().begin(), vfio.listeners().end(),
        [&](const auto& l) { return off >= l->section().offset && off < l->section().end(); });
    if (!owned) {
      out.push_back(
          {"I6 VFIO mappings = plugged ∩ section",
           fmt::format("mapping [{:#x}, +{:#x})", it->first, it->second.size),
           fmt::format("device memory mapped outside every listener's section; {}", describe())});
      break;
    }
  }
  for (const auto& l : vfio.listeners()) {
    const Section s = l->section();
    const uint64_t lo = std::max(first, s.offset / bs);
    const uint64_t hi = std::min(end, s.end() / bs);
    if (lo >= hi) continue;
    uint64_t mapped_blocks = 0;
    for (auto it = maps.lower_bound(addr + lo * bs); it != maps.end() && it->first < addr + hi * bs;
         ++it) {
      const DmaMapping& m = it->second;
      const uint64_t block = (m.iova - addr) / bs;
      if (m.size != bs || (m.iova - addr) % bs != 0 || !device_.bitmap().test(block)) {
        out.push_back(
            {"I6 VFIO mappings = plugged ∩ section",
             fmt::format("mapping [{:#x}, +{:#x}) of section [{:#x}, +{:#x})", m.iova, m.size,
                         s.offset, s.size),
             fmt::format("block {} is {}; mappings must be one block each; {}", block,
                         device_.bitmap().test(block) ? "plugged" : "unplugged", describe())});
        return;
      }
      ++mapped_blocks;
    }
    const uint64_t plugged = device_.bitmap().count_plugged(lo, hi - lo);
    if (plugged != mapped_blocks) {
      out.push_back(
          {"I6 VFIO mappings = plugged ∩ section",
           fmt::format("blocks [{}, {}) of section [{:#x}, +{:#x})", lo, hi, s.offset, s.size),
           fmt::format("{} plugged blocks but {} mapped; {}", plugged, mapped_blocks, describe())});
    }
  }
}

void InvariantChecker::check_memslots(uint64_t first, uint64_t end,
                                      std::vector<Violation>& out) const {
  const uint64_t bs = device_.options().block_size;
  // A block split between two memslots could be mapped in one and not the other.
  if (memslots_->count() > 1 && memslots_->memslot_size() % bs != 0) {
    out.push_back({"I4 sizes are block-aligned", "memslot_size",
                   fmt::format("memslot_size={:#x}; {}", memslots_->memslot_size(), describe())});
  }
  for (uint64_t i = 0; i < memslots_->count(); ++i) {
    const Section s = memslots_->section_of(i);
    if (s.end() / bs <= first || s.offset / bs >= end) continue;
    // Searched through the bitmap's summary: a memslot can span the whole region, and
    // incremental checks run this after every operation.
    const bool holds =
        device_.bitmap().find_next(true, s.offset / bs, s.end() / bs) != s.end() / bs;
    // Without dynamic memslots (a single memslot is never dynamic) the region stays mapped for
    // the life of the device, plugged or not.
    if (!memslots_->dynamic() && !memslots_->active(i)) {
      out.push_back({"I7 memslot mapped iff it holds a plugged block", fmt::format("memslot {}", i),
                     fmt::format("memslot [{:#x}, +{:#x}) is unmapped without dynamic memslots; {}",
                                 s.offset, s.size, describe())});
    }
    if (memslots_->dynamic() && memslots_->active(i) != holds) {
      out.push_back({"I7 memslot mapped iff it holds a plugged block", fmt::format("memslot {}", i),
                     fmt::format("memslot [{:#x}, +{:#x}) is {} but {}; {}", s.offset, s.size,
                                 memslots_->active(i) ? "mapped" : "unmapped",
                                 holds ? "holds plugged blocks" : "holds none", describe())});
    }
    if (!memslots_->dynamic()) continue;
    for (const VfioMemoryListener* vfio : vfio_) {
      const bool listened = std::any_of(vfio->listeners().begin(), vfio->listeners().end(),
                                        [&](const auto& l) { return l->section() == s; });
      if (listened != memslots_->active(i)) {
        out.push_back(
            {"I7 VFIO listens to exactly the mapped memslots", fmt::format("memslot {}", i),
             fmt::format("memslot is {}, VFIO {}", memslots_->active(i) ? "mapped" : "unmapped",
                         listened ? "listens" : "does not listen")});
      }
    }
  }
}

void InvariantChecker::check_residency(uint64_t first, uint64_t end,
                                       std::vector<Violation>& out) const {
  VirtioMemDevice& dev = device_;
  const Backing& backing = dev.region();
  if (backing.data() == nullptr || first >= end) return;
  const uint64_t bs = dev.options().block_size;
  const BlockBitmap& b = dev.bitmap();
  const uint64_t unplugged = (end - first) - b.count_plugged(first, end - first);
  if (unplugged * bs > kExactResidencyLimit) {
    // Too much to read page by page: the mapping's resident private memory cannot exceed what is
    // plugged.
    auto total = backing.resident_bytes_total();
    if (total.has_value() && *total > dev.config().plugged_size) {
      out.push_back({"I8 unplugged blocks are not resident", "device region",
                     fmt::format("{:#x} bytes resident but only {:#x} plugged", *total,
                                 dev.config().plugged_size)});
    }
    return;
  }
  b.for_each_run(false, first, end, [&](uint64_t f, uint64_t n) {
    auto r = backing.resident_bytes(f * bs, n * bs);
    if (r.has_value() && *r != 0) {
      out.push_back(
          {"I8 unplugged blocks are not resident",
           fmt::format("blocks [{}, {}) (gpa {:#x})", f, f + n, dev.options().addr + f * bs),
           fmt::format("{:#x} bytes resident in unplugged memory", *r)});
      return false;
    }
    return true;
  });
}

VMEM_NAMESPACE_END
