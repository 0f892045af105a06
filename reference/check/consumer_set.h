// The host side of one virtio-mem device, as a VMM sets it up: the discard manager, recording
// listeners on sections of the region (stand-ins for any consumer), a VFIO type1 container with
// its memory listener (on explicit sections, or on the memslots of dynamic memslots), and the
// invariant checker watching all of them.
//
// The fuzzers and the trace replayer drive the same set, so a fuzz finding about consumers
// replays from a trace. A set can be replicated onto a migration destination: the same consumers
// exist there before the stream loads, as in QEMU, where VFIO and the memslots are set up with
// the machine and the incoming migration populates through them.
//
// Between the device and the manager sits a tap that can refuse the next populate itself (the
// RAM block could not be populated) and counts refusals, whoever refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reference/check/invariants.h"
#include "reference/discard/discard_manager.h"
#include "reference/discard/recording_listener.h"
#include "reference/kvm/memslot_map.h"
#include "reference/vfio/vfio_listener.h"
#include "reference/vfio/vfio_type1.h"

VMEM_NAMESPACE_BEGIN

struct ConsumerOptions {
  bool vfio = false;                 // a VFIO container and its memory listener
  uint32_t dma_entry_limit = 65535;  // the container's mapping limit
  uint64_t memslot_limit = 0;        // > 0: dynamic memslots, at most this many
  friend bool operator==(const ConsumerOptions&, const ConsumerOptions&) = default;
};

class ConsumerSet final : private DiscardHooks {
 public:
  // Attaches to `device` (which must outlive the set). Fails if the options cannot apply:
  // dynamic memslots need the device's dynamic_memslots option.
  static Result<std::unique_ptr<ConsumerSet>> attach(VirtioMemDevice& device,
                                                     const ConsumerOptions& options);
  ~ConsumerSet() override;
  ConsumerSet(const ConsumerSet&) = delete;
  ConsumerSet& operator=(const ConsumerSet&) = delete;

  // A recording listener named `name` (unique) for `s`, watched by the checker. The manager
  // refuses sections that are empty, unaligned or outside the region.
  Status add_listener(std::string name, const Section& s, bool double_discard = false);
  Status remove_listener(std::string_view name);
  // The listener refuses its n-th populate from now (0 = the next).
  Status refuse_populate(std::string_view name, uint64_t after);
  // VFIO on an explicit section (not with dynamic memslots, which decide VFIO's sections), which
  // overlaps none VFIO has already, as the sections of a flat view never do.
  Status vfio_add(const Section& s);
  Status vfio_del(const Section& s);
  // The container's n-th DMA map from now (1 = the next) fails.
  Status fail_nth_map(uint64_t n);
  // The tap refuses the next populate before any consumer sees it.
  void refuse_next_populate() { refuse_next_ = true; }
  // Whether a refusal injected by one of the three above has yet to happen.
  bool refusal_armed() const;

  // The same consumers (options, listeners and VFIO sections, nothing populated) on `dest`.
  Result<std::unique_ptr<ConsumerSet>> replicate(VirtioMemDevice& dest) const;

  // Invariants I1-I8 over the device and every consumer, plus the listeners' protocol counters
  // (a populate of populated blocks, a discard of unpopulated ones).
  std::vector<Violation> check_full();
  std::vector<Violation> check_incremental();

  uint64_t populate_refusals() const { return refusals_; }
  const std::vector<std::unique_ptr<RecordingListener>>& listeners() const { return listeners_; }
  const RecordingListener* listener(std::string_view name) const;
  const std::vector<Section>& listener_sections() const { return sections_; }
  const VfioType1Container* container() const { return container_.get(); }
  const VfioMemoryListener* vfio() const { return vfio_.get(); }
  const MemslotMap* memslots() const { return memslots_.get(); }
  const ConsumerOptions& options() const { return options_; }

 private:
  ConsumerSet(VirtioMemDevice& device, const ConsumerOptions& options);
  void protocol_errors(std::vector<Violation>& out) const;

  // DiscardHooks: the tap in front of the manager.
  Status populate(uint64_t offset, uint64_t size) override;
  void discard(uint64_t offset, uint64_t size) override;
  void discard_all() override;
  void unplugged(uint64_t offset, uint64_t size) override;

  VirtioMemDevice& device_;
  ConsumerOptions options_;
  DiscardPermission permission_;
  // Declaration order is teardown order reversed: VFIO leaves before the memslots and the
  // manager it listens through.
  std::unique_ptr<DiscardManager> manager_;
  std::unique_ptr<MemslotMap> memslots_;
  std::unique_ptr<VfioType1Container> container_;
  std::unique_ptr<VfioMemoryListener> vfio_;
  std::vector<std::unique_ptr<RecordingListener>> listeners_;
  std::vector<Section> sections_;  // listeners_[i]'s section
  std::vector<Section> vfio_sections_;
  InvariantChecker checker_;
  bool refuse_next_ = false;
  uint64_t refusals_ = 0;
};

VMEM_NAMESPACE_END
