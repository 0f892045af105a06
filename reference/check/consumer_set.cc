#include "reference/check/consumer_set.h"

#include <fmt/format.h>

#include <algorithm>

#include "reference/mem/device.h"

VMEM_NAMESPACE_BEGIN

namespace {

// The host address VFIO maps the device region from. Nothing is ever accessed through it (the
// container is a model of type1), so a fixed value serves every backing.
constexpr uint64_t kRegionHva = 0x7f0000000000ULL;

}  // namespace

Result<std::unique_ptr<ConsumerSet>> ConsumerSet::attach(VirtioMemDevice& device,
                                                         const ConsumerOptions& options) {
  if (options.memslot_limit != 0 && !device.options().dynamic_memslots)
    return unexpected(Error{"dynamic memslots need the device's dynamic_memslots option"});
  auto set = std::unique_ptr<ConsumerSet>(new ConsumerSet(device, options));
  auto manager = DiscardManager::attach(device, set->permission_);
  if (!manager.has_value()) return unexpected(manager.error());
  set->manager_ = std::move(*manager);
  device.set_discard_hooks(set.get());  // the tap goes in front of the manager
  if (options.memslot_limit != 0) {
    set->memslots_ = std::make_unique<MemslotMap>(device, true, options.memslot_limit);
    set->manager_->set_memslots(set->memslots_.get());
    set->checker_.watch(*set->memslots_);
  }
  if (options.vfio) {
    set->container_ = std::make_unique<VfioType1Container>(
        VfioContainerOptions{.dma_entry_limit = options.dma_entry_limit});
    auto vfio = VfioMemoryListener::create(*set->container_, *set->manager_, set->permission_,
                                           kRegionHva, {device.options().profile, 512});
    if (!vfio.has_value()) return unexpected(vfio.error());
    set->vfio_ = std::move(*vfio);
    set->checker_.watch(*set->vfio_);
    if (set->memslots_) VMEM_TRY(set->memslots_->add_listener(*set->vfio_));
  }
  return set;
}

ConsumerSet::ConsumerSet(VirtioMemDevice& device, const ConsumerOptions& options)
    : device_(device), options_(options), checker_(device) {}

ConsumerSet::~ConsumerSet() {
  if (!manager_) return;
  // As a VMM tears down: the listeners leave (and are told what to discard), then VFIO, then the
  // memslots, and the manager detaches from the device last.
  for (auto& l : listeners_)
    manager_->unregister_listener(*l);
  vfio_.reset();
  container_.reset();
  manager_->set_memslots(nullptr);
  memslots_.reset();
  manager_.reset();
}

Status ConsumerSet::add_listener(std::string name, const Section& s, bool double_discard) {
  if (listener(name) != nullptr)
    return unexpected(Error{fmt::format("a listener named '{}' exists", name)});
  const auto& o = device_.options();
  auto l = std::make_unique<RecordingListener>(std::move(name), o.region_size / o.block_size,
                                               o.block_size, double_discard);
  VMEM_TRY(manager_->register_listener(*l, s));
  checker_.watch(*l, s);
  listeners_.push_back(std::move(l));
  sections_.push_back(s);
  return ok();
}

Status ConsumerSet::remove_listener(std::string_view name) {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (listeners_[i]->name() != name) continue;
    manager_->unregister_listener(*listeners_[i]);
    checker_.unwatch(*listeners_[i]);
    listeners_.erase(listeners_.begin() + static_cast<std::ptrdiff_t>(i));
    sections_.erase(sections_.begin() + static_cast<std::ptrdiff_t>(i));
    return ok();
  }
  return unexpected(Error{fmt::format("no listener named '{}'", name)});
}

const RecordingListener* ConsumerSet::listener(std::string_view name) const {
  for (const auto& l : listeners_)
    if (l->name() == name) return l.get();
  return nullptr;
}

Status ConsumerSet::refuse_populate(std::string_view name, uint64_t after) {
  for (auto& l : listeners_) {
    if (l->name() != name) continue;
    l->refuse_after(after);
    return ok();
  }
  return unexpected(Error{fmt::format("no listener named '{}'", name)});
}

Status ConsumerSet::vfio_add(const Section& s) {
  if (!vfio_) return unexpected(Error{"no VFIO container"});
  if (memslots_)
    return unexpected(Error{"with dynamic memslots, the memslots decide VFIO's sections"});
  // The memory API hands VFIO the sections of a flat view, which never overlap; VFIO's own
  // clean-up after a refused section relies on that (it unmaps the section's whole IOVA range).
  for (const Section& other : vfio_sections_) {
    if (s.overlaps(other))
      return unexpected(Error{"VFIO sections of one flat view do not overlap"});
  }
  VMEM_TRY(vfio_->region_add(s));
  vfio_sections_.push_back(s);
  return ok();
}

Status ConsumerSet::vfio_del(const Section& s) {
  auto it = std::find(vfio_sections_.begin(), vfio_sections_.end(), s);
  if (!vfio_ || it == vfio_sections_.end())
    return unexpected(Error{"VFIO does not listen to that section"});
  vfio_->region_del(s);
  vfio_sections_.erase(it);
  return ok();
}

Status ConsumerSet::fail_nth_map(uint64_t n) {
  if (!container_) return unexpected(Error{"no VFIO container"});
  container_->fail_nth_map(n);
  return ok();
}

Result<std::unique_ptr<ConsumerSet>> ConsumerSet::replicate(VirtioMemDevice& dest) const {
  VMEM_ASSIGN_OR_RETURN(auto copy, attach(dest, options_));
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    VMEM_TRY(copy->add_listener(listeners_[i]->name(), sections_[i],
                                listeners_[i]->double_discard_supported()));
  }
  for (const Section& s : vfio_sections_)
    VMEM_TRY(copy->vfio_add(s));
  return copy;
}

void ConsumerSet::protocol_errors(std::vector<Violation>& out) const {
  for (const auto& l : listeners_) {
    if (l->double_populates() == 0 && l->double_discards() == 0) continue;
    out.push_back({"listener protocol", fmt::format("listener '{}'", l->name()),
                   fmt::format("{} populates of populated blocks, {} discards of unpopulated "
                               "blocks (double discards not announced)",
                               l->double_populates(), l->double_discards())});
  }
}

std::vector<Violation> ConsumerSet::check_full() {
  std::vector<Violation> out = checker_.check_full();
  protocol_errors(out);
  return out;
}

std::vector<Violation> ConsumerSet::check_incremental() {
  std::vector<Violation> out = checker_.check_incremental();
  protocol_errors(out);
  return out;
}

bool ConsumerSet::refusal_armed() const {
  return refuse_next_ || (container_ && container_->map_failure_armed()) ||
         std::any_of(listeners_.begin(), listeners_.end(),
                     [](const auto& l) { return l->refusal_armed(); });
}

Status ConsumerSet::populate(uint64_t offset, uint64_t size) {
  if (std::exchange(refuse_next_, false)) {
    ++refusals_;
    return unexpected(Error{"populate refused: the RAM block could not be populated"});
  }
  Status s = manager_->populate(offset, size);
  if (!s.has_value()) ++refusals_;
  return s;
}

void ConsumerSet::discard(uint64_t offset, uint64_t size) {
  manager_->discard(offset, size);
}

void ConsumerSet::discard_all() {
  manager_->discard_all();
}

void ConsumerSet::unplugged(uint64_t offset, uint64_t size) {
  manager_->unplugged(offset, size);
}

VMEM_NAMESPACE_END
