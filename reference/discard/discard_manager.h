// The discard manager of a virtio-mem device: QEMU's RamDiscardManager as virtio-mem implements
// it (qemu-behaviour notes, sections 2 and 3).
//
// Consumers register a RamDiscardListener for a section of the device region, any block-aligned
// sub-range. The manager guarantees, for every listener and at every quiescent point, that what
// the listener was told is populated equals plugged blocks ∩ its section:
//  - registration replays the populated parts of the section; unregistration discards them;
//  - populate is sent before memory becomes usable, to each intersecting listener clipped to
//    *that listener's* section; if one refuses, every listener already told gets a matching
//    discard clipped to its own section, and the device rolls back and answers BUSY;
//  - discard is sent after the memory is freed and cannot fail.
// Listeners are kept most recent first, as QEMU's list is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "reference/base/result.h"
#include "reference/discard/discard_permission.h"
#include "reference/mem/discard_hooks.h"

VMEM_NAMESPACE_BEGIN

class VirtioMemDevice;
class MemslotMap;

// A block-aligned part of the device region: [offset, offset + size).
struct Section {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t end() const { return offset + size; }
  bool empty() const { return size == 0; }
  bool overlaps(const Section& o) const { return offset < o.end() && o.offset < end(); }
  friend bool operator==(const Section&, const Section&) = default;
};

class RamDiscardListener {
 public:
  virtual ~RamDiscardListener() = default;
  // `s` is about to become usable. May refuse; then the listener must have undone its own part.
  virtual Status notify_populate(const Section& s) = 0;
  // `s` was discarded. Cannot fail. With double_discard_supported(), `s` may include parts that
  // were never populated.
  virtual void notify_discard(const Section& s) = 0;
  virtual bool double_discard_supported() const { return false; }
};

class DiscardManager final : public DiscardHooks {
 public:
  // Attaches to `device` as its discard hooks and takes a coordinated-discard permission; fails
  // if discards are disabled.
  static Result<std::unique_ptr<DiscardManager>> attach(VirtioMemDevice& device,
                                                        DiscardPermission& permission);
  ~DiscardManager() override;
  DiscardManager(const DiscardManager&) = delete;
  DiscardManager& operator=(const DiscardManager&) = delete;

  // The granularity of every notification: the block size.
  uint64_t min_granularity() const;
  // True iff every block of `s` is plugged (and `s` lies in the usable region).
  bool is_populated(const Section& s) const;
  // Calls fn for each maximal plugged (or unplugged) run of `s`, clipped to it, in order; stops
  // at and returns the first error.
  Status replay_populated(const Section& s, const std::function<Status(const Section&)>& fn) const;
  Status replay_discarded(const Section& s, const std::function<Status(const Section&)>& fn) const;

  // Registers `l` for `s` (block-aligned, inside the region, not empty) and replays the populated
  // parts. If the listener refuses the replay, what was replayed is discarded again and the
  // registration fails (QEMU only logs and keeps a half-populated listener; we refuse instead).
  Status register_listener(RamDiscardListener& l, const Section& s);
  // Discards the populated parts of the listener's section (one discard if it supports double
  // discards), then forgets it. Unknown listeners are ignored.
  void unregister_listener(RamDiscardListener& l);

  struct Registration {
    RamDiscardListener* listener;
    Section section;
  };
  const std::vector<Registration>& listeners() const { return listeners_; }
  VirtioMemDevice& device() const { return device_; }

  // With dynamic memslots, memslots are mapped before a populate and unmapped after an unplug.
  void set_memslots(MemslotMap* memslots) { memslots_ = memslots; }

  // DiscardHooks
  Status populate(uint64_t offset, uint64_t size) override;
  void discard(uint64_t offset, uint64_t size) override;
  void discard_all() override;
  void unplugged(uint64_t offset, uint64_t size) override;

 private:
  DiscardManager(VirtioMemDevice& device, DiscardPermission& permission);
  Status replay(const Section& s, bool plugged,
                const std::function<Status(const Section&)>& fn) const;

  VirtioMemDevice& device_;
  DiscardPermission& permission_;
  std::vector<Registration> listeners_;  // most recent first
  MemslotMap* memslots_ = nullptr;
};

VMEM_NAMESPACE_END
