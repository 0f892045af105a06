// Writes the seed corpora under corpus/ from named scenarios, so every seed has a readable
// origin. Usage: vmem_fuzz_seeds CORPUS_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "conformance/suite/checks.h"
#include "conformance/suite/runner.h"
#include "conformance/target/reference_target.h"
#include "fuzz/common/fuzz_support.h"
#include "fuzz/common/scripted_device.h"
#include "reference/trace/trace.h"
#include "reference/virtqueue/split_queue.h"

namespace {

using namespace vmem;

std::vector<uint8_t> migration_seed(const std::function<void(VirtioMemDevice&)>& scenario) {
  auto m = fuzz::initialized_machine(fuzz::migration_options(), "seeds");
  scenario(*m->device);
  return m->device->save();
}

void write(const std::filesystem::path& dir, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

Response plug(VirtioMemDevice& d, uint64_t block, uint16_t n) {
  return d.process(
      {VIRTIO_MEM_REQ_PLUG, {}, d.options().addr + block * d.options().block_size, n, {}});
}

// One descriptor as fuzz/virtqueue.cc decodes it (buffer-area addresses, so offset / 8).
struct VqDesc {
  uint8_t kind;
  uint16_t offset_units;
  uint8_t len;  // used when kind has none of 0x20, 0x40, 0x80
  uint16_t flags;
  uint8_t next;
};

// Queue size 16, no event idx, no indirect; one chain at head 0, published.
std::vector<uint8_t> virtqueue_input(const std::vector<VqDesc>& descs,
                                     const std::vector<uint8_t>& request) {
  std::vector<uint8_t> b = {0x03, static_cast<uint8_t>(descs.size() - 1)};
  for (const VqDesc& d : descs) {
    b.push_back(d.kind);
    b.push_back(static_cast<uint8_t>(d.offset_units));
    b.push_back(static_cast<uint8_t>(d.offset_units >> 8));
    if (!(d.kind & 0xe0)) b.push_back(d.len);
    b.push_back(static_cast<uint8_t>(d.flags));
    b.push_back(d.next);
  }
  b.push_back(1);            // one chain pending
  b.insert(b.end(), 16, 0);  // every ring entry names head 0
  b.insert(b.end(), request.begin(), request.end());
  return b;
}

// A request at the device's first block (4 GiB).
std::vector<uint8_t> request(uint16_t type, uint16_t nb) {
  WireRequest r;
  r.type = type;
  r.addr = 4ULL << 30;
  r.nb_blocks = nb;
  const auto bytes = encode_request(r);
  return {bytes.begin(), bytes.end()};
}

}  // namespace

// fuzz/ops.cc's second geometry in the spec profile (setup byte: profile 0 + 3 x geometry 1),
// which is the conformance suite's default device: 1 GiB of 2 MiB blocks at 4 GiB.
constexpr uint8_t kSpecOnOneGiB = 3;
constexpr uint64_t kBlock = 2ULL << 20, kRegion = 1ULL << 30, kAddr = 4ULL << 30;

// fuzz/ops.cc's encoding (see its decoder): a setup byte, the requested size in blocks, the
// consumers byte, then operations.
class OpsInput {
 public:
  // consumers: 0 none, 1 recording listeners, 2 VFIO on sections, 3 VFIO on dynamic memslots
  // (| limit_index << 3); | 4 for a small DMA entry limit; | kEntryLimit for a DMA entry limit of
  // 512 + `above_memslots`.
  static constexpr uint8_t kEntryLimit = 0x20;
  OpsInput(uint8_t setup, uint16_t requested_blocks, uint8_t consumers = 0,
           uint16_t above_memslots = 0) {
    bytes_ = {setup};
    u16(requested_blocks);
    bytes_.push_back(consumers);
    if (consumers & kEntryLimit) u16(above_memslots);
  }
  // A request at `block` blocks from the region start (-32..31), nb from pick_nb's choices.
  OpsInput& request(uint16_t type, int block, uint8_t nb_choice) {
    bytes_.push_back(static_cast<uint8_t>(type << 4));
    return target(block, nb_choice);
  }
  // The same, after a populate refusal is injected: by the tap in front of every consumer, by
  // recording listener `listener` on its populate `after` from now, or by the VFIO container on
  // its `map`-th DMA map from now (1..4).
  OpsInput& refused(uint16_t type, int block, uint8_t nb_choice) {
    return injected(type, block, nb_choice, 0);
  }
  OpsInput& refused_by_listener(uint16_t type, int block, uint8_t nb_choice, uint8_t listener,
                                uint8_t after) {
    return injected(type, block, nb_choice, static_cast<uint8_t>(1 | listener << 2 | after << 4));
  }
  OpsInput& refused_by_vfio(uint16_t type, int block, uint8_t nb_choice, uint8_t map) {
    return injected(type, block, nb_choice, static_cast<uint8_t>(2 | (map - 1) << 2));
  }
  OpsInput& resize(uint32_t blocks) {
    bytes_.push_back(6);
    u32(blocks);
    return *this;
  }
  OpsInput& reset(uint8_t kind) {  // 0 system, 1 device, 2 wake-up
    bytes_.push_back(static_cast<uint8_t>(7 | kind << 4));
    return *this;
  }
  OpsInput& busy(bool on) {
    bytes_.push_back(on ? 8 | 0x10 : 8);
    return *this;
  }
  OpsInput& migrate() {
    bytes_.push_back(9);
    return *this;
  }
  OpsInput& migrate_corrupt(uint16_t at, uint8_t flip) {
    bytes_.push_back(9 | 0x10);
    u16(at);
    bytes_.push_back(flip);
    return *this;
  }
  OpsInput& sweep() {
    bytes_.push_back(10);
    return *this;
  }
  // A recording listener on blocks [first, first + n).
  OpsInput& listener(uint32_t first, uint32_t n, bool double_discard = false) {
    bytes_.push_back(double_discard ? 11 | 0x10 : 11);
    u32(first);
    u32(n - 1);
    return *this;
  }
  OpsInput& listener_del(uint8_t index) {
    bytes_.push_back(12);
    bytes_.push_back(index);
    return *this;
  }
  OpsInput& vfio(uint32_t first, uint32_t n) {
    bytes_.push_back(13);
    u32(first);
    u32(n - 1);
    return *this;
  }
  OpsInput& vfio_del(uint8_t index) {
    bytes_.push_back(14);
    bytes_.push_back(index);
    return *this;
  }
  // A request at any address with any count: pick_addr's and pick_nb's "anything" choices. With
  // `refused`, the host refuses the next populate from this request on.
  OpsInput& request_at(uint16_t type, uint64_t addr, uint16_t nb, bool refused = false) {
    bytes_.push_back(static_cast<uint8_t>(type << 4 | (refused ? 0x40 : 0)));
    if (refused) bytes_.push_back(0);  // by the tap in front of every consumer
    bytes_.push_back(6);               // pick_addr: any address
    u16(0);                            // the block offset, unused by that choice
    u64(addr);
    bytes_.push_back(5);  // pick_nb: any count, shifted by 0
    u16(nb);
    return *this;
  }
  // A host resize to `size` bytes on a region of `blocks` blocks of `bs`; nothing if the
  // decoder cannot express it.
  OpsInput& resize_to(uint64_t size, uint64_t bs, uint64_t blocks) {
    if (size / bs > blocks + 1 || size % bs > 0xffff) return *this;
    bytes_.push_back(size % bs ? 6 | 0x80 : 6);
    u32(static_cast<uint32_t>(size / bs));
    if (size % bs) u16(static_cast<uint16_t>(size % bs));
    return *this;
  }
  std::vector<uint8_t> bytes() const { return bytes_; }

 private:
  OpsInput& injected(uint16_t type, int block, uint8_t nb_choice, uint8_t inj) {
    bytes_.push_back(static_cast<uint8_t>(type << 4 | 0x40));
    bytes_.push_back(inj);
    return target(block, nb_choice);
  }
  OpsInput& target(int block, uint8_t nb_choice) {
    bytes_.push_back(0);  // base: the region's start
    u16(static_cast<uint16_t>(block + 32));
    bytes_.push_back(nb_choice);
    return *this;
  }
  void u16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v));
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> bytes_;
};

// pick_nb's choices.
constexpr uint8_t kOne = 0, kTwo = 1, kZero = 2, kMax = 3;
constexpr uint8_t nb_of(uint8_t n) {  // 1..42 blocks
  return static_cast<uint8_t>(4 + 6 * (n - 1));
}

// A conformance check's recording (`conform --record-traces`, docs/trace-format.md) as an ops
// input: the same requests, resizes, resets and busy windows on fuzz/ops.cc's second geometry,
// which is the suite's default device (1 GiB of 2 MiB blocks at 4 GiB), with nothing but the
// discard manager behind it. Nothing for a recording on another geometry.
std::optional<std::vector<uint8_t>> ops_from_recording(const Trace& t) {
  const DeviceOptions& o = t.options;
  if (o.block_size != kBlock || o.region_size != kRegion || o.addr != kAddr ||
      o.requested_size % kBlock != 0 || o.profile != Profile::Spec)
    return std::nullopt;
  OpsInput in(kSpecOnOneGiB, static_cast<uint16_t>(o.requested_size / kBlock));
  const std::map<std::string, uint16_t> types = {{"plug", VIRTIO_MEM_REQ_PLUG},
                                                 {"unplug", VIRTIO_MEM_REQ_UNPLUG},
                                                 {"unplug_all", VIRTIO_MEM_REQ_UNPLUG_ALL},
                                                 {"state", VIRTIO_MEM_REQ_STATE}};
  const auto number = [](const TraceOp& op, const char* key) {
    auto it = op.kv.find(key);
    return it == op.kv.end() ? 0 : parse_trace_number(it->second).value_or(0);
  };
  // The check's closing comparison (the last `config` and the STATE bisection after it) becomes
  // one ops sweep: ops compares the configuration after every operation anyway, and the
  // bisection's dozens of STATE requests would make every mutation of the seed slower.
  std::size_t end = t.ops.size();
  for (std::size_t i = 0; i < t.ops.size(); ++i) {
    if (t.ops[i].verb == "config") end = i;
  }
  // A refusal the host arms stays armed until a populate meets it, in the recording as in ops,
  // so it goes with the next request whatever that is.
  bool refusal_armed = false;
  for (std::size_t i = 0; i < end; ++i) {
    const TraceOp& op = t.ops[i];
    const std::string what = op.args.empty() ? "" : op.args[0];
    if (op.verb == "request" && types.contains(what)) {
      in.request_at(types.at(what), number(op, "addr"), static_cast<uint16_t>(number(op, "nb")),
                    std::exchange(refusal_armed, false));
    } else if (op.verb == "host" && what == "refuse_populate") {
      refusal_armed = true;
    } else if (op.verb == "host" && what == "resize" && op.args.size() == 2) {
      in.resize_to(parse_trace_number(op.args[1]).value_or(0), kBlock, kRegion / kBlock);
    } else if (op.verb == "host" && what == "system_reset") {
      in.reset(0);
    } else if (op.verb == "host" && what == "wakeup") {
      in.reset(2);
    } else if (op.verb == "host" && what == "busy" && op.args.size() == 2) {
      in.busy(op.args[1] == "on");
    }
    // init, config and the rest: ops compares everything after every operation anyway.
  }
  return in.sweep().bytes();
}

std::vector<uint8_t> ops_scenario(uint8_t setup) {
  return OpsInput(setup, 8)
      .request(VIRTIO_MEM_REQ_PLUG, 0, kTwo)       // ACK
      .request(VIRTIO_MEM_REQ_PLUG, 1, kTwo)       // ERROR: block 1 is plugged
      .request(VIRTIO_MEM_REQ_STATE, 0, kMax)      // ERROR: past the usable end
      .request(VIRTIO_MEM_REQ_STATE, 0, nb_of(4))  // MIXED
      .request(VIRTIO_MEM_REQ_PLUG, 2, nb_of(8))   // NACK: past requested_size
      .refused(VIRTIO_MEM_REQ_PLUG, 4, kOne)       // BUSY: populate refused
      .request(VIRTIO_MEM_REQ_UNPLUG, 0, kOne)     // ACK
      .request(VIRTIO_MEM_REQ_UNPLUG, 0, kZero)    // ERROR: nb_blocks 0
      .request(VIRTIO_MEM_REQ_UNPLUG, 0, kOne)     // ERROR: block 0 is unplugged
      .request(VIRTIO_MEM_REQ_PLUG, -1, kOne)      // ERROR: below the region
      .request(VIRTIO_MEM_REQ_STATE, 1, kOne)      // PLUGGED
      .request(VIRTIO_MEM_REQ_STATE, 5, kOne)      // UNPLUGGED
      .resize(24)
      .busy(true)
      .request(VIRTIO_MEM_REQ_PLUG, 10, kOne)   // BUSY
      .request(VIRTIO_MEM_REQ_UNPLUG, 1, kOne)  // BUSY
      .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
      .reset(0)  // skipped: busy with a block plugged
      .busy(false)
      .migrate()
      .migrate_corrupt(0, 0x01)  // a broken header: rejected
      .sweep()
      .reset(2)
      .reset(1)
      .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
      .resize(0)
      .reset(0)
      .sweep()
      .bytes();
}

// Consumers: listeners on overlapping sections at non-zero offsets, a refusal that rolls back
// across them, VFIO mappings refused by the container, unregistration, migration with the same
// consumers on the destination.
std::vector<uint8_t> ops_consumers_scenario(uint8_t setup, uint8_t consumers) {
  OpsInput in(setup, 24, consumers);
  in.listener(2, 12)                                                 // l0: blocks 2..13
      .listener(6, 20, true)                                         // l1: blocks 6..25
      .request(VIRTIO_MEM_REQ_PLUG, 3, nb_of(4))                     // ACK, l0 and l1
      .refused_by_listener(VIRTIO_MEM_REQ_PLUG, 10, nb_of(3), 1, 0)  // rolled back from l1
      .refused_by_listener(VIRTIO_MEM_REQ_PLUG, 10, nb_of(3), 0, 0)  // refused by l0
      .request(VIRTIO_MEM_REQ_PLUG, 10, nb_of(3));                   // ACK
  if ((consumers & 3) == 2) in.vfio(4, 16).vfio(1, 2);               // VFIO at non-zero offsets
  in.refused_by_vfio(VIRTIO_MEM_REQ_PLUG, 15, nb_of(2), 2)           // the second block's map fails
      .request(VIRTIO_MEM_REQ_PLUG, 15, nb_of(2))
      .request(VIRTIO_MEM_REQ_UNPLUG, 4, kTwo)
      .migrate()
      .migrate_corrupt(40, 0x80)
      .listener_del(0)
      .request(VIRTIO_MEM_REQ_UNPLUG, 10, kOne)
      .listener(0, 24)
      .refused(VIRTIO_MEM_REQ_PLUG, 20, kOne);
  if ((consumers & 3) == 2) in.vfio_del(0);
  in.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne).reset(0).sweep();
  return in.bytes();
}

// VFIO at the edge of QEMU's mapping budget: a container of 612 mappings, of which 512 - 1 are
// kept for the other memslots, takes a section of 101 blocks (exactly the limit) and then one of
// one block (each section stands for one of the memslots), not one of two.
std::vector<uint8_t> ops_budget_scenario() {
  constexpr uint64_t kBlock200 = kAddr + 200 * kBlock;
  return OpsInput(kSpecOnOneGiB, 256, 2 | OpsInput::kEntryLimit, 100)
      .request(VIRTIO_MEM_REQ_PLUG, 0, nb_of(4))
      .vfio(0, 101)  // maps the four plugged blocks
      .vfio(200, 2)  // refused: 613 mappings
      .vfio(200, 1)
      .request_at(VIRTIO_MEM_REQ_PLUG, kBlock200, 1)
      .vfio_del(0)
      .vfio(0, 102)  // 102 + 1 + 510 = 613 again: refused
      .sweep()
      .bytes();
}

// Dynamic memslots on 1 GiB blocks: on 8 GiB with 8 memslots, one block per memslot, so every
// plug maps memslots, every unplug unmaps them, and VFIO follows; on 6 GiB with 4 memslots, the
// region's share (1.5 GiB) is rounded up to whole blocks, 3 memslots of 2 blocks.
constexpr uint8_t kSixGiBSpec = 15;  // profile spec, 6 GiB of 1 GiB blocks
constexpr uint8_t kFourMemslots = 3 | 1 << 3;
constexpr uint8_t kEightMemslots = 3 | 2 << 3;
std::vector<uint8_t> ops_memslots_scenario(uint8_t setup, uint8_t consumers = kEightMemslots) {
  return OpsInput(setup, 6, consumers)
      .listener(1, 5)                                           // l0: memslots 1..5
      .request(VIRTIO_MEM_REQ_PLUG, 3, kTwo)                    // maps memslots 3 and 4
      .refused_by_vfio(VIRTIO_MEM_REQ_PLUG, 0, kOne, 1)         // memslot 0's mapping fails
      .refused_by_listener(VIRTIO_MEM_REQ_PLUG, 1, kTwo, 0, 1)  // rolled back, memslots unmapped
      .request(VIRTIO_MEM_REQ_PLUG, 1, kOne)
      .request(VIRTIO_MEM_REQ_UNPLUG, 4, kOne)  // memslot 4 unmapped
      .migrate()
      .listener_del(0)
      .request(VIRTIO_MEM_REQ_STATE, 0, nb_of(6))
      .reset(0)  // everything unplugged and unmapped
      .request(VIRTIO_MEM_REQ_PLUG, 5, kOne)
      .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
      .bytes();
}

// The mapping budget with VFIO on dynamic memslots: on 6 GiB of 1 GiB blocks, 3 memslots of 2
// blocks, and a DMA limit of 514. The k-th memslot mapped needs 2k mappings plus 512 - k for the
// memslots KVM may still add, so the second one is the budget's edge and the third is refused,
// which refuses the plug that would map it.
std::vector<uint8_t> ops_memslot_budget_scenario() {
  return OpsInput(kSixGiBSpec, 6, kFourMemslots | OpsInput::kEntryLimit, 2)
      .request(VIRTIO_MEM_REQ_PLUG, 0, kOne)    // memslot 0: 513 mappings
      .request(VIRTIO_MEM_REQ_PLUG, 2, kOne)    // memslot 1: 514, the limit itself
      .request(VIRTIO_MEM_REQ_PLUG, 4, kOne)    // memslot 2: 515, refused
      .request(VIRTIO_MEM_REQ_UNPLUG, 0, kOne)  // memslot 0 unmapped
      .request(VIRTIO_MEM_REQ_PLUG, 4, kOne)    // memslot 2 beside memslot 1: 514
      .sweep()
      .bytes();
}

// fuzz/qemu_diff.cc's encoding: operations only, on 1 GiB of 2 MiB blocks, 256 MiB requested.
class QemuDiffInput {
 public:
  // A request at `block` blocks from the region start (-32..31), nb from pick_nb's choices.
  QemuDiffInput& request(uint16_t type, int block, uint8_t nb_choice) {
    bytes_.push_back(static_cast<uint8_t>(type << 3));
    bytes_.push_back(0);  // base: the region's start
    bytes_.push_back(static_cast<uint8_t>(block + 32));
    bytes_.push_back(0);
    bytes_.push_back(nb_choice);
    return *this;
  }
  QemuDiffInput& resize(uint16_t blocks) {
    bytes_.insert(bytes_.end(),
                  {4, static_cast<uint8_t>(blocks), static_cast<uint8_t>(blocks >> 8)});
    return *this;
  }
  QemuDiffInput& system_reset() {
    bytes_.push_back(5);
    return *this;
  }
  QemuDiffInput& device_reset() {
    bytes_.push_back(5 | 8);
    return *this;
  }
  QemuDiffInput& busy(bool on) {
    bytes_.push_back(on ? 6 | 8 : 6);
    return *this;
  }
  QemuDiffInput& sweep() {
    bytes_.push_back(7);
    return *this;
  }
  std::vector<uint8_t> bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// fuzz/transport.cc's encoding: a transport byte (0 PCI, 1 MMIO), then accesses: an op byte
// (kind in bits 0-2: 0 read, 2 write; width 1 << bits 3-4), an index into the target's list of
// driver registers, and for a write the value in `width` bytes.
class TransportInput {
 public:
  explicit TransportInput(bool mmio) { bytes_ = {static_cast<uint8_t>(mmio ? 1 : 0)}; }
  TransportInput& write(uint8_t reg, unsigned width, uint64_t value) {
    bytes_.push_back(static_cast<uint8_t>(2 | (width == 1   ? 0
                                               : width == 2 ? 1
                                               : width == 4 ? 2
                                                            : 3)
                                                  << 3));
    bytes_.push_back(reg);
    for (unsigned i = 0; i < width; ++i)
      bytes_.push_back(static_cast<uint8_t>(value >> (8 * i)));
    return *this;
  }
  TransportInput& read(uint8_t reg, unsigned width) {
    bytes_.push_back(static_cast<uint8_t>((width == 1   ? 0
                                           : width == 2 ? 1
                                           : width == 4 ? 2
                                                        : 3)
                                          << 3));
    bytes_.push_back(reg);
    return *this;
  }
  TransportInput& resize(uint16_t blocks) {
    bytes_.push_back(6);
    bytes_.push_back(0);
    bytes_.push_back(static_cast<uint8_t>(blocks));
    bytes_.push_back(static_cast<uint8_t>(blocks >> 8));
    return *this;
  }
  std::vector<uint8_t> bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path ms = std::filesystem::path(argv[1]) / "migration_stream";
  write(ms, "initialized", migration_seed([](VirtioMemDevice&) {}));
  write(ms, "plugged_runs", migration_seed([](VirtioMemDevice& d) {
          plug(d, 0, 3);
          plug(d, 10, 1);
          plug(d, 63, 1);
        }));
  write(ms, "resized_up", migration_seed([](VirtioMemDevice& d) {
          (void)d.set_requested_size(128ULL << 20);
          plug(d, 60, 4);
        }));
  write(ms, "shrunk_by_unplug_all", migration_seed([](VirtioMemDevice& d) {
          plug(d, 5, 2);
          (void)d.set_requested_size(16ULL << 20);
          d.process({VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}});
        }));
  write(ms, "needs_reset", migration_seed([](VirtioMemDevice& d) {
          plug(d, 1, 1);
          d.process({7, {}, 0, 0, {}});
          d.write_status(static_cast<uint8_t>(d.status() | VIRTIO_CONFIG_S_FAILED));
        }));
  // virtqueue: inputs in fuzz/virtqueue.cc's layout with well-formed chains, so the fuzzer
  // starts from requests the device answers.
  const std::filesystem::path vq = std::filesystem::path(argv[1]) / "virtqueue";
  write(vq, "empty", {0x03});
  write(vq, "one_state_request",
        virtqueue_input(
            {{0x20, 0x0000, 0, VIRTQ_DESC_F_NEXT, 1}, {0x40, 0x0020, 0, VIRTQ_DESC_F_WRITE, 0}},
            request(VIRTIO_MEM_REQ_STATE, 1)));
  write(vq, "plug_split_in_three",
        virtqueue_input({{0x00, 0x0000, 8, VIRTQ_DESC_F_NEXT, 1},
                         {0x00, 0x0001, 16, VIRTQ_DESC_F_NEXT, 2},
                         {0x40, 0x0020, 0, VIRTQ_DESC_F_WRITE, 0}},
                        request(VIRTIO_MEM_REQ_PLUG, 2)));
  write(vq, "unknown_type",
        virtqueue_input(
            {{0x20, 0x0000, 0, VIRTQ_DESC_F_NEXT, 1}, {0x40, 0x0020, 0, VIRTQ_DESC_F_WRITE, 0}},
            request(9, 1)));
  // ops: operation sequences in fuzz/ops.cc's encoding that reach every request verdict, the
  // host actions, a refused populate and a migration, in each profile and on a 1 TiB region.
  const std::filesystem::path ops = std::filesystem::path(argv[1]) / "ops";
  for (auto [name, setup] :
       {std::pair{"everything-spec", 0}, std::pair{"everything-qemu", 1},
        std::pair{"everything-qemu-7.2", 2}, std::pair{"everything-spec-1TiB", 12}}) {
    write(ops, name, ops_scenario(static_cast<uint8_t>(setup)));
  }
  // Setup 0 (spec, 64 MiB of 2 MiB blocks) and 2 (qemu-7.2): listeners only, VFIO on sections,
  // a 256-entry DMA limit, and dynamic memslots on a region that gets a single one; then
  // dynamic memslots that are dynamic, on 8 GiB (setups 6 and 7: spec and qemu), and on 6 GiB
  // where the memslot size is rounded up to whole blocks (setup 15: spec).
  for (auto [name, setup, consumers] :
       {std::tuple{"consumers-listeners-spec", 0, 1}, std::tuple{"consumers-vfio-spec", 0, 2},
        std::tuple{"consumers-vfio-qemu-7.2", 2, 2 | 4},
        std::tuple{"consumers-one-memslot-spec", 0, 3}}) {
    write(ops, name,
          ops_consumers_scenario(static_cast<uint8_t>(setup), static_cast<uint8_t>(consumers)));
  }
  write(ops, "consumers-vfio-budget-spec", ops_budget_scenario());
  write(ops, "consumers-memslots-spec", ops_memslots_scenario(6));
  write(ops, "consumers-memslots-qemu", ops_memslots_scenario(7));
  write(ops, "consumers-memslots-6GiB-spec", ops_memslots_scenario(kSixGiBSpec, kFourMemslots));
  write(ops, "consumers-memslots-budget-spec", ops_memslot_budget_scenario());
  // And each conformance check's request sequence, recorded against the reference, so the
  // fuzzer also starts where the suite's checks go (boundaries, busy windows, resets).
  {
    const auto catalog = *conformance::embedded_catalog();
    conformance::ReferenceTarget reference(
        {conformance::Transport::Pci, Profile::Spec, "", BackingKind::Anonymous});
    conformance::RunOptions o;
    o.record_profile = "spec";
    const conformance::Report r =
        conformance::run_suite(reference, catalog, conformance::all_checks(), o);
    for (const conformance::CheckResult& c : r.checks) {
      const auto trace = parse_trace(c.trace);
      if (!trace.has_value()) continue;  // a check the target skipped records nothing
      if (auto bytes = ops_from_recording(*trace); bytes && bytes->size() > 5)
        write(ops, "conform-" + c.name, *bytes);
    }
  }
  // qemu_diff: every verdict QEMU gives, resizes up and down, both resets and the busy window,
  // in three short inputs (each costs QEMU round trips).
  const std::filesystem::path qd = std::filesystem::path(argv[1]) / "qemu_diff";
  write(qd, "requests",
        QemuDiffInput()
            .request(VIRTIO_MEM_REQ_PLUG, 0, kTwo)       // ACK
            .request(VIRTIO_MEM_REQ_PLUG, 1, kTwo)       // ERROR (QEMU checks NACK first)
            .request(VIRTIO_MEM_REQ_STATE, 0, nb_of(4))  // MIXED
            .request(VIRTIO_MEM_REQ_PLUG, 2, kMax)       // ERROR: past the usable end
            .request(VIRTIO_MEM_REQ_UNPLUG, 0, kOne)     // ACK
            .request(VIRTIO_MEM_REQ_UNPLUG, 0, kOne)     // ERROR
            .request(VIRTIO_MEM_REQ_UNPLUG, -1, kOne)    // ERROR: below the region
            .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
            .sweep()
            .bytes());
  write(qd, "resizes-and-resets",
        QemuDiffInput()
            .resize(4)
            .request(VIRTIO_MEM_REQ_PLUG, 0, nb_of(4))  // ACK
            .request(VIRTIO_MEM_REQ_PLUG, 4, kOne)      // NACK: at requested_size
            .resize(0)
            .device_reset()  // nothing changes
            .request(VIRTIO_MEM_REQ_STATE, 0, nb_of(4))
            .system_reset()  // unplugs, shrinks the usable region
            .sweep()
            .resize(513)  // beyond the region: refused
            .bytes());
  write(qd, "busy-window",
        QemuDiffInput()
            .request(VIRTIO_MEM_REQ_PLUG, 3, kOne)
            .busy(true)
            .request(VIRTIO_MEM_REQ_PLUG, 5, kOne)    // BUSY
            .request(VIRTIO_MEM_REQ_UNPLUG, 3, kOne)  // BUSY
            .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
            .request(VIRTIO_MEM_REQ_STATE, 3, kOne)  // never BUSY
            .busy(false)
            .request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, kOne)
            .bytes());
  // transport: the generic initialization over each transport, a queue, a notification with
  // empty rings, an interrupt acknowledged, a resize. Register numbers index the target's lists.
  const std::filesystem::path tr = std::filesystem::path(argv[1]) / "transport";
  write(tr, "pci-initialize",
        TransportInput(false)
            .write(4, 1, 0x01)
            .write(4, 1, 0x03)  // device_status
            .write(2, 4, 0)
            .write(3, 4, 2)  // UNPLUGGED_INACCESSIBLE (offered)
            .write(2, 4, 1)
            .write(3, 4, 1)  // VERSION_1
            .write(4, 1, 0x0b)
            .read(4, 1)  // FEATURES_OK
            .write(6, 2, 0)
            .write(7, 2, 64)  // queue 0, 64 entries
            .write(9, 4, 0x100000)
            .write(10, 4, 0x100400)
            .write(11, 4, 0x100800)
            .write(8, 2, 1)
            .write(4, 1, 0x0f)  // enable, DRIVER_OK
            .write(15, 2, 0)
            .read(12, 1)  // notify, ISR
            .resize(64)
            .read(12, 1)
            .read(5, 1)         // config change, generation
            .write(4, 1, 0x00)  // reset
            .bytes());
  write(tr, "mmio-initialize",
        TransportInput(true)
            .write(10, 4, 0x01)
            .write(10, 4, 0x03)  // Status
            .write(3, 4, 0)
            .write(2, 4, 2)  // UNPLUGGED_INACCESSIBLE (offered)
            .write(3, 4, 1)
            .write(2, 4, 1)  // VERSION_1
            .write(10, 4, 0x0b)
            .read(10, 4)
            .write(4, 4, 0)
            .write(5, 4, 64)  // QueueSel, QueueNum
            .write(11, 4, 0x100000)
            .write(12, 4, 0x100400)
            .write(13, 4, 0x100800)
            .write(6, 4, 1)
            .write(10, 4, 0x0f)  // QueueReady, DRIVER_OK
            .write(7, 4, 0)
            .read(8, 4)
            .write(9, 4, 3)  // notify, InterruptStatus, ACK
            .resize(64)
            .read(14, 4)
            .write(10, 4, 0x00)
            .bytes());
  // driver: each check against the reference, recorded as the answers fuzz/driver.cc replays
  // (ScriptedDevice), behind both transports. A seed is a well-behaved device; its mutations
  // are hostile ones near the real paths.
  const std::filesystem::path dr = std::filesystem::path(argv[1]) / "driver";
  const auto catalog = *conformance::embedded_catalog();
  const auto& checks = conformance::all_checks();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    for (auto t : {conformance::Transport::Pci, conformance::Transport::Mmio}) {
      conformance::ReferenceTarget reference({t, Profile::Spec, "", BackingKind::Anonymous});
      fuzz::RecordingTarget recorder(reference);
      conformance::RunOptions o;
      o.filters = {checks[i].name};
      o.completion_timeout = std::chrono::milliseconds(0);
      (void)conformance::run_suite(recorder, catalog, checks, o);
      std::vector<uint8_t> seed = {static_cast<uint8_t>(i)};
      seed.insert(seed.end(), recorder.recorded().begin(), recorder.recorded().end());
      write(dr, checks[i].name + (t == conformance::Transport::Pci ? "-pci" : "-mmio"), seed);
    }
  }
  std::printf("seeds written to %s\n", argv[1]);
  return 0;
}
