// Fuzz target `ops`: an operation sequence decoded from the input and run against the reference
// device with its host-side consumers and, side by side, against the independent spec model
// (fuzz/model), in the same profile (decisions D1).
//
// Operations: guest requests with addresses biased towards the block, usable-region,
// requested-size, plugged and region edges and the 2^64 wrap; populate refusals injected in
// front of the consumers, by a recording listener or as a VFIO map failure; host resizes up and
// down; device reset, system reset, S3 wake-up; busy windows; migration (save, load into a fresh
// device with the same consumers and go on there), or a corrupted stream that must be rejected
// or load a consistent state; recording listeners and VFIO sections registered and unregistered
// on block-aligned sections anywhere in the region; VFIO on the memslots of dynamic memslots.
//
// Oracles after every operation: the verdict (and an ACKed STATE's state) and every
// configuration field equal the model's; the invariant checker finds nothing over the device
// and every consumer (incremental after each operation, full at the end), and no listener was
// told to populate what it had or to discard what it had not. And VFIO takes a section, or
// refuses it, as the model of QEMU's mapping budget (fuzz/model/vfio_budget.h) says: an explicit
// section, or a memslot a plug maps with dynamic memslots (which refuses the plug).
//
// Environment: VMEM_FUZZ_FAULT=NAME runs a named fault (ops_mutants_* binaries only);
// VMEM_FUZZ_VERBOSE=1 prints each operation; VMEM_FUZZ_TRACE=FILE writes what the input did as
// a trace (docs/trace-format.md), with the model's answers as the expected observations, so a
// finding becomes a regression that `vmemcheck replay` runs on any build.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz/common/fuzz_support.h"
#include "fuzz/common/pick.h"
#include "fuzz/common/trace_log.h"
#include "fuzz/model/spec_model.h"
#include "fuzz/model/vfio_budget.h"
#include "reference/check/consumer_set.h"
#include "reference/mem/machine.h"
#include "reference/trace/trace.h"

namespace {

using namespace vmem;

const char* env(const char* name) {
  return std::getenv(name);
}

bool verbose() {
  static const bool v = env("VMEM_FUZZ_VERBOSE") != nullptr;
  return v;
}

using fuzz::TraceLog;

// An oracle failed: the trace so far (when asked for) records the finding, then the input is
// kept as a crash.
[[noreturn]] void fail(TraceLog& trace, const char* what, const std::string& detail = {}) {
  trace.line("# oracle: {} {}", what, detail);
  trace.write();
  fuzz::oracle_failure("ops", what, detail);
}

constexpr Profile kProfiles[] = {Profile::Spec, Profile::Qemu, Profile::Qemu72};
constexpr model::Profile kModelProfiles[] = {model::Profile::Spec, model::Profile::Qemu,
                                             model::Profile::Qemu72};

struct Geometry {
  uint64_t block_size;
  uint64_t region_size;
};
// Small regions keep each input cheap; 1 TiB of 2 MiB blocks reaches the large-region paths
// (null backing: no memory is touched). 6 GiB of 1 GiB blocks is a region four dynamic memslots
// cannot share in whole blocks (1.5 GiB each), so the memslot size must be rounded up.
constexpr Geometry kGeometries[] = {
    {2ULL << 20, 64ULL << 20}, {2ULL << 20, 1ULL << 30}, {1ULL << 30, 8ULL << 30},
    {4096, 16ULL << 20},       {2ULL << 20, 1ULL << 40}, {1ULL << 30, 6ULL << 30},
};
// The device is driven through process(), so it needs no guest RAM for rings; building and
// unmapping 64 MiB of it for every input was 18% of a run.
constexpr uint64_t kNoRam = 0;
constexpr std::size_t kMaxListeners = 3;
constexpr unsigned kMaxMigrations = 4;
constexpr std::size_t kMaxVfioSections = 3;

// A device and its host side. Declaration order: the consumers go before the device.
struct Rig {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<ConsumerSet> consumers;
  std::vector<Section> vfio_sections;
  unsigned next_listener = 0;
  unsigned migrations = 0;

  VirtioMemDevice& device() { return *machine->device; }
};

std::string describe(const WireConfig& c) {
  return fmt::format("usable {:#x} plugged {:#x} requested {:#x}", c.usable_region_size,
                     c.plugged_size, c.requested_size);
}

void compare(Rig& rig, const model::SpecModel& m, TraceLog& trace, const char* after) {
  const WireConfig c = rig.device().config();
  const model::Config e = m.config();
  trace.line("config -> usable_region_size={:#x} plugged_size={:#x} requested_size={:#x}",
             e.usable_region_size, e.plugged_size, e.requested_size);
  trace.line("check -> ok");
  if (c.block_size != e.block_size || c.addr != e.addr || c.region_size != e.region_size ||
      c.usable_region_size != e.usable_region_size || c.plugged_size != e.plugged_size ||
      c.requested_size != e.requested_size) {
    fail(trace, "configuration differs from the model",
         fmt::format("after {}: device {}, model usable {:#x} plugged {:#x} requested {:#x}", after,
                     describe(c), e.usable_region_size, e.plugged_size, e.requested_size));
  }
  const auto v = rig.consumers->check_incremental();
  if (!v.empty())
    fail(trace, "invariant violated", fmt::format("after {}: {}", after, to_string(v[0])));
}

// A non-empty, block-aligned section anywhere in the region.
Section pick_section(fuzz::InputBytes& in, const DeviceOptions& o) {
  const uint64_t blocks = o.region_size / o.block_size;
  const uint64_t first = in.take<uint32_t>() % blocks;
  const uint64_t n = 1 + in.take<uint32_t>() % (blocks - first);
  return {first * o.block_size, n * o.block_size};
}

// What QEMU's mapping budget (fuzz/model) sees of a section of the region.
model::DmaSection dma_section(const DeviceOptions& o, const Section& s) {
  return model::DmaSection{o.addr + s.offset, s.size, o.block_size};
}

bool budget_admits(const ConsumerSet& cs, model::Profile p,
                   const std::vector<model::DmaSection>& registered, const model::DmaSection& s) {
  return model::vfio_budget_admits(p, registered, s, cs.vfio()->options().max_memslots,
                                   cs.container()->dma_entry_limit());
}

// Whether VFIO should take `s` beside the sections it has: sections of one flat view never
// overlap (ConsumerSet::vfio_add), and QEMU's mapping budget must allow it.
bool vfio_takes(const Rig& rig, const ConsumerSet& cs, model::Profile p, const Section& s) {
  for (const Section& other : rig.vfio_sections) {
    if (s.overlaps(other)) return false;
  }
  const DeviceOptions& o = rig.machine->device->options();
  std::vector<model::DmaSection> registered;
  for (const Section& x : rig.vfio_sections)
    registered.push_back(dma_section(o, x));
  return budget_admits(cs, p, registered, dma_section(o, s));
}

// With VFIO on dynamic memslots, a plug the spec ACKs first maps the memslots it reaches that are
// not mapped yet, one after the other, and VFIO takes each as a section only if the mapping
// budget allows it beside the memslots it has: one refusal refuses the plug. Whether the budget
// refuses this plug (false when it maps no memslot); nullopt when VFIO is not on dynamic
// memslots or the spec does not ACK the plug, which then populates nothing. The memslots'
// geometry is the reference's (the invariant checker judges it).
std::optional<bool> memslot_budget_refuses(const Rig& rig, const ConsumerSet& cs,
                                           const model::SpecModel& m, const WireRequest& r) {
  const MemslotMap* slots = cs.memslots();
  if (slots == nullptr || cs.vfio() == nullptr || r.type != VIRTIO_MEM_REQ_PLUG) return {};
  model::SpecModel probe = m;
  if (probe.request(r.type, r.addr, r.nb_blocks).type != VIRTIO_MEM_RESP_ACK) return {};
  const DeviceOptions& o = rig.machine->device->options();
  std::vector<model::DmaSection> registered;
  for (uint64_t i = 0; i < slots->count(); ++i) {
    if (slots->active(i)) registered.push_back(dma_section(o, slots->section_of(i)));
  }
  // An ACKed plug lies within the region, so neither sum wraps.
  const uint64_t offset = r.addr - o.addr;
  const uint64_t end = offset + uint64_t{r.nb_blocks} * o.block_size;
  for (uint64_t i = offset / slots->memslot_size();
       i < slots->count() && i * slots->memslot_size() < end; ++i) {
    if (slots->active(i)) continue;
    const model::DmaSection s = dma_section(o, slots->section_of(i));
    if (!budget_admits(cs, m.profile(), registered, s)) return true;
    registered.push_back(s);
  }
  return false;
}

// Who refuses the next populate: the tap in front of every consumer, a recording listener, or
// the VFIO container (a DMA map fails).
void inject_refusal(fuzz::InputBytes& in, Rig& rig, TraceLog& trace) {
  const uint8_t inj = in.take<uint8_t>();
  ConsumerSet& cs = *rig.consumers;
  if (inj % 3 == 1 && !cs.listeners().empty()) {
    const auto& l = cs.listeners()[(inj >> 2) % cs.listeners().size()];
    const uint64_t after = (inj >> 4) & 3;
    (void)cs.refuse_populate(l->name(), after);
    trace.line("listener refuse {} after={} -> ok", l->name(), after);
  } else if (inj % 3 == 2 && cs.container() != nullptr) {
    const uint64_t n = 1 + (inj >> 2) % 4;
    (void)cs.fail_nth_map(n);
    trace.line("vfio fail_map {} -> ok", n);
  } else {
    cs.refuse_next_populate();
    trace.line("host refuse_populate -> ok");
  }
}

// The consumers an input asks for: none but the tap, recording listeners, VFIO on explicit
// sections, or VFIO on dynamic memslots (not in qemu-7.2, which has none).
ConsumerOptions consumer_options(fuzz::InputBytes& in, DeviceOptions& o) {
  const uint8_t sel = in.take<uint8_t>();
  ConsumerOptions c;
  const unsigned mode = sel % 4;
  c.vfio = mode >= 2;
  if (sel & 4) c.dma_entry_limit = 256;  // small enough that ENOSPC bites
  // Just above the 512 memslots the mapping budget reserves, so that sections of a few hundred
  // blocks meet the budget's edge.
  if (sel & 0x20) c.dma_entry_limit = 512 + in.take<uint16_t>() % 1024;
  if (mode == 3 && o.profile != Profile::Qemu72) {
    o.dynamic_memslots = true;
    constexpr uint64_t kLimits[] = {2, 4, 8, 256};
    c.memslot_limit = kLimits[(sel >> 3) & 3];
  }
  return c;
}

void run_input(fuzz::InputBytes& in, TraceLog& trace) {
  const uint8_t setup = in.take<uint8_t>();
  const size_t p = setup % 3;
  const Geometry& g = kGeometries[(setup / 3) % std::size(kGeometries)];

  DeviceOptions o;
  o.profile = kProfiles[p];
  o.block_size = g.block_size;
  o.region_size = g.region_size;
  o.addr = 4ULL << 30;
  o.requested_size = (in.take<uint16_t>() % (g.region_size / g.block_size + 1)) * g.block_size;
  const ConsumerOptions co = consumer_options(in, o);
  if (const char* f = env("VMEM_FUZZ_FAULT")) o.fault = f;
  auto made = Machine::create(o, BackingKind::Null, kNoRam);
  if (!made.has_value()) {
    if (!o.fault.empty())
      fail(trace, "cannot build the device with the fault", made.error().message);
    return;  // a geometry the options refuse: nothing to compare
  }
  Rig rig;
  rig.machine = std::move(*made);
  auto attached = ConsumerSet::attach(rig.device(), co);
  if (!attached.has_value()) {
    // A host set-up QEMU refuses to start with (e.g. VFIO on memslots beyond the DMA mapping
    // budget): nothing to compare.
    if (verbose())
      std::fprintf(stderr, "ops: consumers refused: %s\n", attached.error().message.c_str());
    return;
  }
  rig.consumers = std::move(*attached);
  {
    DeviceOptions shown = o;
    shown.fault.clear();  // the trace is the fault-free expectation; replay --fault NAME
    const std::string device = format_device_line(shown, BackingKind::Null, "none");
    trace.line("{}", device);
    if (verbose())
      std::fprintf(stderr, "ops: %s; consumers vfio=%d memslots=%llu\n", device.c_str(), co.vfio,
                   static_cast<unsigned long long>(co.memslot_limit));
    trace.line("init");
    trace.line("consumers vfio={} entry_limit={} memslots={} -> ok", co.vfio ? 1 : 0,
               co.dma_entry_limit, co.memslot_limit);
  }
  // The device decides nothing by PERSISTENT_SUSPEND (docs/profiles.md rows 10-11), so the
  // model is told it was not negotiated.
  std::unique_ptr<model::SpecModel> made_model;
  try {
    made_model = std::make_unique<model::SpecModel>(
        kModelProfiles[p], model::Geometry{o.addr, o.region_size, o.block_size, o.usable_extent},
        o.requested_size, false);
  } catch (const std::exception& e) {
    fail(trace, "the model refuses options the device accepted", e.what());
  }
  model::SpecModel& m = *made_model;
  compare(rig, m, trace, "creation");

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const uint8_t op = in.take<uint8_t>();
    const WireConfig c = rig.device().config();
    ConsumerSet& cs = *rig.consumers;
    switch (op % 16) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5: {  // a guest request (the most common operation)
        WireRequest r;
        r.type = static_cast<uint16_t>(op >> 4 & 3);
        if (op & 0x40) inject_refusal(in, rig, trace);
        r.addr = fuzz::pick_addr(in, c);
        r.nb_blocks = fuzz::pick_nb(in);
        const uint64_t refusals = cs.populate_refusals();
        const std::optional<bool> budget_refuses = memslot_budget_refuses(rig, cs, m, r);
        const bool armed = budget_refuses && cs.refusal_armed();
        // Each listener's populates, discards and refusals, to see a roll-back.
        std::vector<std::array<uint64_t, 3>> before;
        if (verbose()) {
          for (const auto& l : cs.listeners())
            before.push_back({l->populates(), l->discards(), l->refusals()});
        }
        const Response got = rig.device().process(r);
        // The model is told whether the host refused: which consumer refuses which populate is
        // the host's business; what the device makes of it is the spec's. Only the mapping
        // budget of VFIO on dynamic memslots is judged: it must refuse, and unless a refusal
        // was injected, it alone may.
        const bool refused = cs.populate_refusals() != refusals;
        const bool expect_refused =
            budget_refuses ? *budget_refuses || (armed && refused) : refused;
        const model::Answer want = m.request(r.type, r.addr, r.nb_blocks, expect_refused);
        trace.request(r.type, r.addr, r.nb_blocks, want.type, want.state);
        if (refused != expect_refused) {
          fail(trace, "a plug's refusal differs from the mapping budget's",
               fmt::format("PLUG {:#x}+{}: the budget {} its memslots, the device {} it", r.addr,
                           r.nb_blocks, expect_refused ? "refuses" : "takes",
                           refused ? "refused" : "took"));
        }
        if (verbose()) {
          // A refusal rolls back every listener populated before the refuser.
          unsigned rolled_back = 0;
          for (size_t i = 0; refused && i < before.size(); ++i) {
            const auto& l = cs.listeners()[i];
            if (l->populates() > before[i][0] && l->discards() > before[i][1] &&
                l->refusals() == before[i][2])
              ++rolled_back;
          }
          const std::string note =
              refused ? fmt::format(" (populate refused; {} listeners rolled back)", rolled_back)
                      : "";
          std::fprintf(stderr, "ops: %s %#llx+%u%s -> %s%s\n", request_type_name(r.type),
                       static_cast<unsigned long long>(r.addr), r.nb_blocks, note.c_str(),
                       to_string(got.type),
                       r.type == VIRTIO_MEM_REQ_STATE && got.type == RespType::Ack
                           ? (std::string(" ") + to_string(got.state)).c_str()
                           : "");
        }
        if (static_cast<uint16_t>(got.type) != want.type ||
            (want.type == VIRTIO_MEM_RESP_ACK && r.type == VIRTIO_MEM_REQ_STATE &&
             static_cast<uint16_t>(got.state) != want.state)) {
          fail(trace, "verdict differs from the model",
               fmt::format("{}: device {}/{}, model {}/{}", request_type_name(r.type),
                           to_string(got.type), to_string(got.state), want.type, want.state));
        }
        compare(rig, m, trace, "a request");
        break;
      }
      case 6: {  // host resize, aligned mostly
        uint64_t target = (in.take<uint32_t>() % (g.region_size / g.block_size + 2)) * g.block_size;
        if (op & 0x80) target += in.take<uint16_t>();
        const bool accepted = rig.device().set_requested_size(target).has_value();
        const bool want = m.set_requested_size(target);
        trace.line("host resize {:#x} -> {}", target, want ? "ok" : "error");
        if (accepted != want)
          fail(trace, "resize accepted by one side only", std::to_string(target));
        if (verbose())
          std::fprintf(stderr, "ops: resize %#llx -> %d\n", (unsigned long long)target, accepted);
        compare(rig, m, trace, "a resize");
        break;
      }
      case 7:
        switch (op >> 4 & 3) {
          case 0:
            rig.device().system_reset();
            m.system_reset();
            trace.line("host system_reset -> ok");
            trace.line("init");  // the reset cleared the transport; the driver starts again
            break;
          case 1:
            rig.device().reset();
            m.device_reset();
            trace.line("host device_reset -> ok");
            trace.line("init");
            break;
          default:
            rig.device().wakeup_reset();
            m.wakeup_reset();
            trace.line("host wakeup -> ok");
            break;
        }
        if (verbose()) std::fprintf(stderr, "ops: reset kind %d\n", op >> 4 & 3);
        compare(rig, m, trace, "a reset");
        break;
      case 8: {
        const bool busy = (op & 0x10) != 0;
        rig.device().set_busy(busy);
        m.set_busy(busy);
        trace.line("host busy {} -> ok", busy ? "on" : "off");
        if (verbose()) std::fprintf(stderr, "ops: busy %d\n", busy);
        compare(rig, m, trace, "a busy window change");
        break;
      }
      case 9: {  // migration: save, maybe corrupt, load into a fresh device with its consumers
        // Not on the 1 TiB region: its 64 KiB bitmap, traced compare by compare, would slow the
        // whole target down a hundredfold (migration_stream covers the loader on its own).
        // And at most kMaxMigrations per input: one costs as much as dozens of requests, and
        // libFuzzer's hit-count buckets had filled the corpus with inputs repeating it, while a
        // chain of migrations reaches nothing one does not.
        if (g.region_size / g.block_size > (1U << 18) || rig.migrations == kMaxMigrations) break;
        ++rig.migrations;
        std::vector<uint8_t> stream = rig.device().save();
        const bool corrupt = (op & 0x10) != 0 && !stream.empty();
        size_t at = 0;
        uint8_t flip = 0;
        if (corrupt) {
          at = in.take<uint16_t>() % stream.size();
          flip = static_cast<uint8_t>(in.take<uint8_t>() | 1);
          stream[at] ^= flip;
        }
        auto dest = Machine::create(rig.device().options(), BackingKind::Null, kNoRam);
        if (!dest.has_value()) fail(trace, "cannot build the destination", dest.error().message);
        auto dest_consumers = cs.replicate(*(*dest)->device);
        if (!dest_consumers.has_value())
          fail(trace, "cannot replicate the consumers", dest_consumers.error().message);
        const bool loaded = (*dest)->device->load(stream).has_value();
        if (verbose())
          std::fprintf(stderr, "ops: migrate%s -> %s\n", corrupt ? " (corrupted)" : "",
                       loaded ? "loaded" : "rejected");
        if (!corrupt) {
          trace.line("migrate -> ok");
          if (!loaded) fail(trace, "an intact migration stream was rejected");
          rig.consumers.reset();  // before the source device it listens to
          rig.machine = std::move(*dest);
          rig.consumers = std::move(*dest_consumers);
          rig.device().set_busy(m.busy());  // the busy window is the host's, not migrated
          trace.line("host busy {} -> ok", m.busy() ? "on" : "off");
          const auto bad = rig.consumers->check_full();
          if (!bad.empty()) fail(trace, "invariants after an intact migration", to_string(bad[0]));
          compare(rig, m, trace, "a migration");
        } else {
          // A corruption the loader accepted must still be a consistent device and host side.
          trace.line("migrate_corrupt {} {:#x} -> consistent", at, flip);
          if (loaded) {
            const auto bad = (*dest_consumers)->check_full();
            if (!bad.empty())
              fail(trace, "a corrupted stream loaded an inconsistent state", to_string(bad[0]));
          }
          dest_consumers->reset();
        }
        break;
      }
      case 11: {  // a recording listener on a section anywhere
        if (cs.listeners().size() >= kMaxListeners) break;
        const Section s = pick_section(in, o);
        const std::string name = fmt::format("l{}", rig.next_listener++);
        const bool double_discard = (op & 0x10) != 0;
        const bool added = cs.add_listener(name, s, double_discard).has_value();
        trace.line("listener add {} offset={:#x} size={:#x}{} -> {}", name, s.offset, s.size,
                   double_discard ? " double_discard=1" : "", added ? "ok" : "error");
        if (verbose())
          std::fprintf(stderr, "ops: listener %s at %#llx+%#llx -> %s\n", name.c_str(),
                       (unsigned long long)s.offset, (unsigned long long)s.size,
                       added ? "added" : "refused");
        compare(rig, m, trace, "a listener registration");
        break;
      }
      case 12: {
        if (cs.listeners().empty()) break;
        const std::string name = cs.listeners()[in.take<uint8_t>() % cs.listeners().size()]->name();
        (void)cs.remove_listener(name);
        trace.line("listener del {} -> ok", name);
        if (verbose()) std::fprintf(stderr, "ops: listener %s removed\n", name.c_str());
        compare(rig, m, trace, "a listener unregistration");
        break;
      }
      case 13: {  // VFIO on a section (with dynamic memslots the memslots decide instead)
        if (cs.vfio() == nullptr || cs.memslots() != nullptr ||
            rig.vfio_sections.size() >= kMaxVfioSections)
          break;
        const Section s = pick_section(in, o);
        const uint64_t maps = cs.container()->map_calls();
        const bool added = cs.vfio_add(s).has_value();
        const bool mapped = cs.container()->map_calls() != maps;
        const bool want = vfio_takes(rig, cs, m.profile(), s);
        // A section VFIO takes may still be refused when mapping what is populated fails
        // (injected, or ENOSPC in qemu-7.2, which only warns about the budget); one it does not
        // take is refused before anything is mapped. The trace expects the model's answer.
        const bool expected = want && (added || !mapped);
        trace.line("vfio add offset={:#x} size={:#x} -> {}", s.offset, s.size,
                   expected ? "ok" : "error");
        if (want ? !added && !mapped : added || mapped) {
          fail(trace, "VFIO section verdict differs from the mapping-budget model",
               fmt::format("{:#x}+{:#x}: {} ({} DMA maps), model {}", s.offset, s.size,
                           added ? "added" : "refused", cs.container()->map_calls() - maps,
                           want ? "takes it" : "refuses it"));
        }
        if (added) rig.vfio_sections.push_back(s);
        if (verbose())
          std::fprintf(stderr, "ops: vfio section %#llx+%#llx -> %s\n",
                       (unsigned long long)s.offset, (unsigned long long)s.size,
                       added ? "added" : "refused");
        compare(rig, m, trace, "a VFIO section");
        break;
      }
      case 14: {
        if (rig.vfio_sections.empty()) break;
        const size_t i = in.take<uint8_t>() % rig.vfio_sections.size();
        const Section s = rig.vfio_sections[i];
        rig.vfio_sections.erase(rig.vfio_sections.begin() + static_cast<std::ptrdiff_t>(i));
        (void)cs.vfio_del(s);
        trace.line("vfio del offset={:#x} size={:#x} -> ok", s.offset, s.size);
        if (verbose())
          std::fprintf(stderr, "ops: vfio section %#llx+%#llx removed\n",
                       (unsigned long long)s.offset, (unsigned long long)s.size);
        compare(rig, m, trace, "a VFIO section removal");
        break;
      }
      default: {  // 10, 15: STATE sweeps cost little and catch silent state drift
        const uint64_t blocks = c.usable_region_size / c.block_size;
        for (uint64_t b = 0; b < blocks && b < 4 * 0xffffULL; b += 0xffff) {
          const auto n = static_cast<uint16_t>(std::min<uint64_t>(0xffff, blocks - b));
          const uint64_t addr = c.addr + b * c.block_size;
          const Response got = rig.device().process({VIRTIO_MEM_REQ_STATE, {}, addr, n, {}});
          const model::Answer want = m.request(VIRTIO_MEM_REQ_STATE, addr, n);
          trace.request(VIRTIO_MEM_REQ_STATE, addr, n, want.type, want.state);
          if (static_cast<uint16_t>(got.type) != want.type ||
              (want.type == VIRTIO_MEM_RESP_ACK && static_cast<uint16_t>(got.state) != want.state))
            fail(trace, "a STATE sweep differs from the model");
        }
        break;
      }
    }
  }
  trace.line("check -> ok");
  const auto v = rig.consumers->check_full();
  if (!v.empty()) fail(trace, "invariant violated at the end", to_string(v[0]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::InputBytes in(data, size);
  TraceLog trace("ops");
  run_input(in, trace);
  trace.write();
  return 0;
}
