// Fuzz target `ops`: an operation sequence decoded from the input and run against the reference
// device and, side by side, against the independent spec model (fuzz/model), in the same
// profile (decisions D1). Operations: guest requests with addresses biased towards the block,
// usable-region, requested-size and region edges and the 2^64 wrap; host resizes up and down;
// device reset, system reset, S3 wake-up; busy windows; populate refusals; migration save, then
// load into a fresh device, or a corrupted stream that must be rejected or load a consistent
// state.
// Oracles after every operation: the verdict (and an ACKed STATE's state) and every
// configuration field equal the model's; the invariant checker finds nothing (incremental after
// each operation, full at the end).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz/common/fuzz_support.h"
#include "fuzz/model/spec_model.h"
#include "reference/check/invariants.h"
#include "reference/mem/machine.h"

namespace {

using namespace vmem;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  fuzz::oracle_failure("ops", what, detail);
}

bool verbose() {
  static const bool v = std::getenv("VMEM_FUZZ_VERBOSE") != nullptr;
  return v;
}

// Refuses the next populate when told to, as a VFIO mapping failure would.
class RefusingHooks final : public DiscardHooks {
 public:
  bool refuse_next = false;
  Status populate(uint64_t, uint64_t) override {
    if (!std::exchange(refuse_next, false)) return ok();
    return unexpected(Error{"populate refused (fuzz)"});
  }
  void discard(uint64_t, uint64_t) override {}
  void discard_all() override {}
};

constexpr Profile kProfiles[] = {Profile::Spec, Profile::Qemu, Profile::Qemu72};
constexpr model::Profile kModelProfiles[] = {model::Profile::Spec, model::Profile::Qemu,
                                             model::Profile::Qemu72};

struct Geometry {
  uint64_t block_size;
  uint64_t region_size;
};
// Small regions keep each input cheap; 1 TiB of 2 MiB blocks reaches the large-region paths
// (null backing: no memory is touched).
constexpr Geometry kGeometries[] = {
    {2ULL << 20, 64ULL << 20}, {2ULL << 20, 1ULL << 30}, {1ULL << 30, 8ULL << 30},
    {4096, 16ULL << 20},       {2ULL << 20, 1ULL << 40},
};

struct Rig {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<InvariantChecker> checker;
  RefusingHooks hooks;

  VirtioMemDevice& device() { return *machine->device; }
  void adopt(std::unique_ptr<Machine> m) {
    machine = std::move(m);
    machine->device->set_discard_hooks(&hooks);
    checker = std::make_unique<InvariantChecker>(*machine->device);
  }
};

std::string describe(const WireConfig& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "usable %#llx plugged %#llx requested %#llx",
                static_cast<unsigned long long>(c.usable_region_size),
                static_cast<unsigned long long>(c.plugged_size),
                static_cast<unsigned long long>(c.requested_size));
  return buf;
}

void compare(VirtioMemDevice& d, const model::SpecModel& m, InvariantChecker& checker,
             const char* after) {
  const WireConfig c = d.config();
  const model::Config e = m.config();
  if (c.block_size != e.block_size || c.addr != e.addr || c.region_size != e.region_size ||
      c.usable_region_size != e.usable_region_size || c.plugged_size != e.plugged_size ||
      c.requested_size != e.requested_size) {
    fail("configuration differs from the model",
         std::string("after ") + after + ": device " + describe(c) + ", model usable " +
             std::to_string(e.usable_region_size) + " plugged " + std::to_string(e.plugged_size) +
             " requested " + std::to_string(e.requested_size));
  }
  const auto v = checker.check_incremental();
  if (!v.empty())
    fail("invariant violated", std::string("after ") + after + ": " + to_string(v[0]));
}

// An address near one of the edges that matter, or anywhere.
uint64_t pick_addr(fuzz::InputBytes& in, const WireConfig& c) {
  const uint8_t sel = in.take<uint8_t>();
  const auto blocks = static_cast<int16_t>(in.take<uint16_t>() % 64) - 32;
  uint64_t base = 0;
  switch (sel % 8) {
    case 0:
      base = c.addr;
      break;
    case 1:
      base = c.addr + c.usable_region_size;
      break;
    case 2:
      base = c.addr + c.requested_size;
      break;
    case 3:
      base = c.addr + c.region_size;
      break;
    case 4:
      base = 0 - c.block_size;
      break;
    case 5:
      base = c.addr + (in.take<uint32_t>() % (c.region_size / c.block_size + 1)) * c.block_size;
      break;
    case 6:
      return in.take<uint64_t>();
    case 7:
      base = c.addr + c.plugged_size;
      break;
  }
  uint64_t addr = base + static_cast<uint64_t>(static_cast<int64_t>(blocks)) * c.block_size;
  if (sel & 0x80) addr += in.take<uint16_t>() % c.block_size;  // misaligned now and then
  return addr;
}

uint16_t pick_nb(fuzz::InputBytes& in) {
  const uint8_t sel = in.take<uint8_t>();
  switch (sel % 6) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 0;
    case 3:
      return 0xffff;
    case 4:
      return static_cast<uint16_t>(1 + sel / 6);
    default:
      return in.take<uint16_t>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::InputBytes in(data, size);
  const uint8_t setup = in.take<uint8_t>();
  const size_t p = setup % 3;
  const Geometry& g = kGeometries[(setup / 3) % std::size(kGeometries)];

  DeviceOptions o;
  o.profile = kProfiles[p];
  o.block_size = g.block_size;
  o.region_size = g.region_size;
  o.addr = 4ULL << 30;
  o.requested_size = (in.take<uint16_t>() % (g.region_size / g.block_size + 1)) * g.block_size;
  auto made = Machine::create(o, BackingKind::Null);
  if (!made.has_value()) return 0;  // a geometry the options refuse: nothing to compare
  Rig rig;
  rig.adopt(std::move(*made));
  // The device decides nothing by PERSISTENT_SUSPEND (docs/profiles.md rows 10-11), so the
  // model is told it was not negotiated.
  std::unique_ptr<model::SpecModel> made_model;
  try {
    made_model = std::make_unique<model::SpecModel>(
        kModelProfiles[p], model::Geometry{o.addr, o.region_size, o.block_size, o.usable_extent},
        o.requested_size, false);
  } catch (const std::exception& e) {
    fail("the model refuses options the device accepted", e.what());
  }
  model::SpecModel& m = *made_model;
  compare(rig.device(), m, *rig.checker, "creation");

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const uint8_t op = in.take<uint8_t>();
    const WireConfig c = rig.device().config();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {  // a guest request (the most common operation)
        WireRequest r;
        r.type = static_cast<uint16_t>(op >> 3 & 3);
        r.addr = pick_addr(in, c);
        r.nb_blocks = pick_nb(in);
        const bool refuse = r.type == VIRTIO_MEM_REQ_PLUG && (op & 0x80);
        rig.hooks.refuse_next = refuse;
        const Response got = rig.device().process(r);
        rig.hooks.refuse_next = false;
        const model::Answer want = m.request(r.type, r.addr, r.nb_blocks, refuse);
        if (verbose()) {
          std::fprintf(stderr, "ops: %s %#llx+%u%s -> %s\n", request_type_name(r.type),
                       static_cast<unsigned long long>(r.addr), r.nb_blocks,
                       refuse ? " (populate refused)" : "", to_string(got.type));
        }
        if (static_cast<uint16_t>(got.type) != want.type ||
            (want.type == VIRTIO_MEM_RESP_ACK && r.type == VIRTIO_MEM_REQ_STATE &&
             static_cast<uint16_t>(got.state) != want.state)) {
          fail("verdict differs from the model",
               std::string(request_type_name(r.type)) + ": device " + to_string(got.type) + "/" +
                   to_string(got.state) + ", model " + std::to_string(want.type) + "/" +
                   std::to_string(want.state));
        }
        compare(rig.device(), m, *rig.checker, "a request");
        break;
      }
      case 3: {  // host resize, aligned mostly
        uint64_t target = (in.take<uint32_t>() % (g.region_size / g.block_size + 2)) * g.block_size;
        if (op & 0x80) target += in.take<uint16_t>();
        const bool accepted = rig.device().set_requested_size(target).has_value();
        if (accepted != m.set_requested_size(target))
          fail("resize accepted by one side only", std::to_string(target));
        if (verbose())
          std::fprintf(stderr, "ops: resize %#llx -> %d\n", (unsigned long long)target, accepted);
        compare(rig.device(), m, *rig.checker, "a resize");
        break;
      }
      case 4:
        switch (op >> 3 & 3) {
          case 0:
            rig.device().system_reset();
            m.system_reset();
            break;
          case 1:
            rig.device().reset();
            m.device_reset();
            break;
          default:
            rig.device().wakeup_reset();
            m.wakeup_reset();
            break;
        }
        if (verbose()) std::fprintf(stderr, "ops: reset kind %d\n", op >> 3 & 3);
        compare(rig.device(), m, *rig.checker, "a reset");
        break;
      case 5: {
        const bool busy = (op & 8) != 0;
        rig.device().set_busy(busy);
        m.set_busy(busy);
        if (verbose()) std::fprintf(stderr, "ops: busy %d\n", busy);
        compare(rig.device(), m, *rig.checker, "a busy window change");
        break;
      }
      case 6: {  // migration: save, maybe corrupt, load into a fresh device
        // Not on the 1 TiB region: its 64 KiB bitmap, traced compare by compare, would slow the
        // whole target down a hundredfold (migration_stream covers the loader on its own).
        if (g.region_size / g.block_size > (1U << 18)) break;
        std::vector<uint8_t> stream = rig.device().save();
        const bool corrupt = (op & 8) != 0 && !stream.empty();
        if (corrupt) {
          const size_t at = in.take<uint16_t>() % stream.size();
          stream[at] ^= static_cast<uint8_t>(in.take<uint8_t>() | 1);
        }
        DeviceOptions fresh = rig.device().options();
        auto dest = Machine::create(fresh, BackingKind::Null);
        if (!dest.has_value()) fail("cannot build the destination", dest.error().message);
        const bool loaded = (*dest)->device->load(stream).has_value();
        if (verbose())
          std::fprintf(stderr, "ops: migrate%s -> %s\n", corrupt ? " (corrupted)" : "",
                       loaded ? "loaded" : "rejected");
        if (!corrupt) {
          if (!loaded) fail("an intact migration stream was rejected");
          rig.adopt(std::move(*dest));
          rig.device().set_busy(m.busy());  // the busy window is the host's, not migrated
          if (!rig.checker->check_full().empty()) fail("invariants after an intact migration");
          compare(rig.device(), m, *rig.checker, "a migration");
        } else if (loaded) {
          // A corruption the loader accepted must still be a consistent device.
          InvariantChecker other(*(*dest)->device);
          const auto bad = other.check_full();
          if (!bad.empty())
            fail("a corrupted stream loaded an inconsistent state", to_string(bad[0]));
        }
        break;
      }
      default: {  // several STATE sweeps cost nothing and catch silent state drift
        const uint64_t blocks = c.usable_region_size / c.block_size;
        for (uint64_t b = 0; b < blocks && b < 4 * 0xffffULL; b += 0xffff) {
          const auto n = static_cast<uint16_t>(std::min<uint64_t>(0xffff, blocks - b));
          const Response got =
              rig.device().process({VIRTIO_MEM_REQ_STATE, {}, c.addr + b * c.block_size, n, {}});
          const model::Answer want = m.request(VIRTIO_MEM_REQ_STATE, c.addr + b * c.block_size, n);
          if (static_cast<uint16_t>(got.type) != want.type ||
              (want.type == VIRTIO_MEM_RESP_ACK && static_cast<uint16_t>(got.state) != want.state))
            fail("a STATE sweep differs from the model");
        }
        break;
      }
    }
  }
  const auto v = rig.checker->check_full();
  if (!v.empty()) fail("invariant violated at the end", to_string(v[0]));
  return 0;
}
