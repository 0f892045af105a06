#include "reference/discard/discard_manager.h"

#include <fmt/format.h>

#include <algorithm>

#include "reference/kvm/memslot_map.h"
#include "reference/mem/consumer_rules.h"
#include "reference/mem/device.h"
#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace {

Section clip(const Section& a, const Section& b, Fault fault) {
  const auto c = rules::clip(U64{}, a.offset, a.size, b.offset, b.size, fault);
  return {c.offset, c.size};
}

}  // namespace

Result<std::unique_ptr<DiscardManager>> DiscardManager::attach(VirtioMemDevice& device,
                                                               DiscardPermission& permission) {
  VMEM_TRY(permission.require(/*coordinated=*/true));
  auto m = std::unique_ptr<DiscardManager>(new DiscardManager(device, permission));
  device.set_discard_hooks(m.get());
  return m;
}

DiscardManager::DiscardManager(VirtioMemDevice& device, DiscardPermission& permission)
    : device_(device), permission_(permission) {}

DiscardManager::~DiscardManager() {
  device_.set_discard_hooks(nullptr);
  permission_.release_require(true);
}

uint64_t DiscardManager::min_granularity() const {
  return device_.options().block_size;
}

bool DiscardManager::is_populated(const Section& s) const {
  const auto quiet = device_.quiesce();
  // As virtio-mem: round out to blocks, refuse what is not a valid range, then every bit set.
  const uint64_t bs = min_granularity();
  const uint64_t region = device_.options().region_size;
  if (s.size == 0 || s.offset > region || s.size > region - s.offset) return false;
  const uint64_t first = s.offset / bs;
  const uint64_t end = (s.end() + bs - 1) / bs;
  if (end > device_.bitmap().size() || end * bs > device_.config().usable_region_size) {
    return false;
  }
  return device_.bitmap().is_range_plugged(first, end - first);
}

Status DiscardManager::replay(const Section& s, bool plugged,
                              const std::function<Status(const Section&)>& fn) const {
  const auto quiet = device_.quiesce();
  const uint64_t bs = min_granularity();
  const uint64_t first = s.offset / bs;
  const uint64_t end = std::min<uint64_t>((s.end() + bs - 1) / bs, device_.bitmap().size());
  Status result;
  device_.bitmap().for_each_run(plugged, first, end, [&](uint64_t f, uint64_t n) {
    const Section run = clip(Section{f * bs, n * bs}, s, device_.fault());
    if (run.empty()) return false;
    result = fn(run);
    return result.has_value();
  });
  return result;
}

Status DiscardManager::replay_populated(const Section& s,
                                        const std::function<Status(const Section&)>& fn) const {
  return replay(s, true, fn);
}

Status DiscardManager::replay_discarded(const Section& s,
                                        const std::function<Status(const Section&)>& fn) const {
  return replay(s, false, fn);
}

Status DiscardManager::register_listener(RamDiscardListener& l, const Section& s) {
  // No PLUG or UNPLUG may fall between the replay and the insertion (decisions D12).
  const auto quiet = device_.quiesce();
  const uint64_t bs = min_granularity();
  const uint64_t region = device_.options().region_size;
  if (s.size == 0 || s.offset % bs != 0 || s.size % bs != 0 || s.offset > region ||
      s.size > region - s.offset) {
    return unexpected(Error{fmt::format(
        "section [{:#x}, +{:#x}) is not a non-empty, block-aligned part of the {:#x}-byte region",
        s.offset, s.size, region)});
  }
  for (const Registration& r : listeners_) {
    if (r.listener == &l) return unexpected(Error{"listener already registered"});
  }
  // Replay what is populated; on a refusal, take back the runs already announced.
  uint64_t announced_end = s.offset;
  auto replayed = replay_populated(s, [&](const Section& run) -> Status {
    VMEM_TRY(l.notify_populate(run));
    announced_end = run.end();
    return ok();
  });
  if (!replayed.has_value()) {
    (void)replay_populated(Section{s.offset, announced_end - s.offset}, [&](const Section& run) {
      l.notify_discard(run);
      return ok();
    });
    return unexpected(
        Error{fmt::format("listener refused the populate replay: {}", replayed.error().message)});
  }
  listeners_.insert(listeners_.begin(), Registration{&l, s});
  device_.mark_touched(s.offset / bs, s.size / bs);
  return ok();
}

void DiscardManager::unregister_listener(RamDiscardListener& l) {
  const auto quiet = device_.quiesce();
  auto it = std::find_if(listeners_.begin(), listeners_.end(),
                         [&](const Registration& r) { return r.listener == &l; });
  if (it == listeners_.end()) return;
  const Section s = it->section;
  listeners_.erase(it);
  device_.mark_touched(s.offset / min_granularity(), s.size / min_granularity());
  if (device_.bitmap().count() == 0 || faulty(device_.fault(), Fault::UnregisterKeepsMappings))
    return;
  if (l.double_discard_supported()) {
    l.notify_discard(s);
    return;
  }
  (void)replay_populated(s, [&](const Section& run) {
    l.notify_discard(run);
    return ok();
  });
}

Status DiscardManager::populate(uint64_t offset, uint64_t size) {
  const Section range{offset, size};
  // Memslots first, so that consumers that appear with them (VFIO) are told about the range too.
  if (memslots_ != nullptr) VMEM_TRY(memslots_->activate(offset, size));
  const Fault fault = device_.fault();
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const Section part = clip(listeners_[i].section, range, fault);
    if (part.empty()) continue;
    auto r = listeners_[i].listener->notify_populate(part);
    if (r.has_value()) continue;
    // Roll back: every listener told so far gets a discard clipped to *its own* section.
    for (std::size_t j = 0; j < i; ++j) {
      if (faulty(fault, Fault::RollbackSkipsFirstListener) && j == 0) continue;
      const Section own = faulty(fault, Fault::RollbackClippedToFailingSection)
                              ? listeners_[i].section
                              : listeners_[j].section;
      const Section undo = clip(own, range, fault);
      if (!undo.empty()) listeners_[j].listener->notify_discard(undo);
    }
    return unexpected(Error{
        fmt::format("populate of [{:#x}, +{:#x}) refused: {}", offset, size, r.error().message)});
  }
  return ok();
}

void DiscardManager::discard(uint64_t offset, uint64_t size) {
  const Section range{offset, size};
  for (const Registration& r : listeners_) {
    const Section part = clip(r.section, range, device_.fault());
    if (!part.empty()) r.listener->notify_discard(part);
  }
}

void DiscardManager::unplugged(uint64_t offset, uint64_t size) {
  if (memslots_ != nullptr) memslots_->deactivate_unplugged(offset, size);
}

void DiscardManager::discard_all() {
  // QEMU's virtio_mem_notify_unplug_all(): one discard of the whole section for listeners that
  // can take one, a discard per plugged run for the others. The bitmap is still set here.
  for (const Registration& r : listeners_) {
    if (r.listener->double_discard_supported()) {
      r.listener->notify_discard(r.section);
      continue;
    }
    (void)replay_populated(r.section, [&](const Section& run) {
      r.listener->notify_discard(run);
      return ok();
    });
  }
}

VMEM_NAMESPACE_END
