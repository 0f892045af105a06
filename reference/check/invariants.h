// The invariant checker: one function that tests, fuzzers and the conformance suite share to
// judge the reference and its consumers (decisions D11).
//
//   I1 plugged_size = popcount(bitmap) x block_size                         (DEV-3)
//   I2 no plugged block beyond the usable region
//   I3 requested_size <= usable_region_size <= region_size                     (DEV-4)
//   I4 block_size a power of two; addr and every size block-aligned          (DEV-5, DEV-6)
//   I5 every listener's view = plugged blocks ∩ its section
//   I6 every VFIO listener's mappings = one mapping per plugged block of its section, pinned
//      bytes = their size, mappings <= the container's entry limit
//   I7 with dynamic memslots, a memslot is mapped iff it holds a plugged block, and VFIO listens
//      to exactly the mapped ones; without (or with a single memslot), the region stays mapped
//   I8 unplugged blocks are not resident (decisions D10), where the backing holds memory
//
// check_full() looks at everything; check_incremental() only at the blocks the device touched
// since the previous check (I1-I4 are O(1) and always checked). A violation names the invariant,
// where it broke, and the state around it.
#pragma once

#include <string>
#include <vector>

#include "reference/discard/recording_listener.h"
#include "reference/kvm/memslot_map.h"
#include "reference/mem/device.h"
#include "reference/vfio/vfio_listener.h"

VMEM_NAMESPACE_BEGIN

struct Violation {
  std::string invariant;  // "I1 plugged_size", ...
  std::string where;      // e.g. "block 17 (gpa 0x102200000)", "listener 'vfio0'"
  std::string state;      // the numbers around it
};

std::string to_string(const Violation& v);

class InvariantChecker {
 public:
  explicit InvariantChecker(VirtioMemDevice& device) : device_(device) {}

  void watch(const RecordingListener& l, const Section& s) { views_.push_back({&l, s}); }
  void watch(const VfioMemoryListener& vfio) { vfio_.push_back(&vfio); }
  void watch(const MemslotMap& memslots) { memslots_ = &memslots; }
  void unwatch(const RecordingListener& l);

  std::vector<Violation> check_full();
  std::vector<Violation> check_incremental();

 private:
  std::vector<Violation> check(uint64_t first, uint64_t end);
  void check_sizes(std::vector<Violation>& out) const;
  void check_view(const RecordingListener& l, const Section& s, uint64_t first, uint64_t end,
                  std::vector<Violation>& out) const;
  void check_vfio(const VfioMemoryListener& vfio, uint64_t first, uint64_t end,
                  std::vector<Violation>& out) const;
  void check_memslots(uint64_t first, uint64_t end, std::vector<Violation>& out) const;
  void check_residency(uint64_t first, uint64_t end, std::vector<Violation>& out) const;
  std::string describe() const;

  struct View {
    const RecordingListener* listener;
    Section section;
  };
  VirtioMemDevice& device_;
  std::vector<View> views_;
  std::vector<const VfioMemoryListener*> vfio_;
  const MemslotMap* memslots_ = nullptr;
};

VMEM_NAMESPACE_END
