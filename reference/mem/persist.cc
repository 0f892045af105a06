// Migration of the virtio-mem device (decisions D13).
//
// Stream format, version 1, every integer little-endian:
//   magic "VMEMDEV\0", u32 version
//   geometry:  u64 addr, u64 region_size, u64 block_size, u16 node_id
//   options:   u8 profile, u64 usable_extent, u64 offered features
//   sizes:     u64 requested_size, u64 usable_region_size, u64 plugged_size
//   virtio:    u8 status, u64 driver features, u32 config_generation, u8 isr, u8 broken,
//              u8 config notification pending, u16 queue count, then per queue:
//              u16 size, u8 ready, u64 desc, u64 avail, u64 used, u16 next_avail,
//              u16 next_used, u16 signalled_used, u8 signalled_used_valid
//   bitmap:    u64 word count, words
// Nothing may follow. Loading checks everything against the target before changing it, like
// QEMU's virtio_mem_mig_sanity_checks_post_load(), and recomputes plugged_size from the bitmap
// instead of trusting the stream (a bug class Cloud Hypervisor and Firecracker shipped).
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <type_traits>

#include "reference/base/byte_stream.h"
#include "reference/mem/device.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr std::array<uint8_t, 8> kMagic = {'V', 'M', 'E', 'M', 'D', 'E', 'V', 0};
constexpr uint32_t kVersion = 1;

struct Loaded {
  uint64_t addr, region_size, block_size;
  uint16_t node_id;
  uint8_t profile;
  uint64_t usable_extent, features;
  uint64_t requested_size, usable_region_size, plugged_size;
  VirtioDeviceState virtio;
  std::vector<uint64_t> words;
};

// Reads the next field into `dst` (its type says how many bytes) or returns the error.
#define VMEM_GET(reader, dst, name)                                       \
  do {                                                                    \
    auto v_ = (reader).get<std::remove_reference_t<decltype(dst)>>(name); \
    if (!v_.has_value()) return unexpected(v_.error());                   \
    (dst) = *v_;                                                          \
  } while (false)
#define VMEM_GET_FLAG(reader, dst, name)                \
  do {                                                  \
    auto v_ = (reader).get_flag(name);                  \
    if (!v_.has_value()) return unexpected(v_.error()); \
    (dst) = *v_;                                        \
  } while (false)

Result<Loaded> parse(std::span<const uint8_t> stream) {
  ByteReader r(stream);
  Loaded l{};
  for (std::size_t i = 0; i < kMagic.size(); ++i) {
    uint8_t b = 0;
    VMEM_GET(r, b, "magic");
    if (b != kMagic[i]) return unexpected(Error{"not a virtio-mem device stream (bad magic)"});
  }
  uint32_t version = 0;
  VMEM_GET(r, version, "version");
  if (version != kVersion) {
    return unexpected(
        Error{fmt::format("stream version {} is not the supported {}", version, kVersion)});
  }
  VMEM_GET(r, l.addr, "addr");
  VMEM_GET(r, l.region_size, "region_size");
  VMEM_GET(r, l.block_size, "block_size");
  VMEM_GET(r, l.node_id, "node_id");
  VMEM_GET(r, l.profile, "profile");
  VMEM_GET(r, l.usable_extent, "usable_extent");
  VMEM_GET(r, l.features, "features");
  VMEM_GET(r, l.requested_size, "requested_size");
  VMEM_GET(r, l.usable_region_size, "usable_region_size");
  VMEM_GET(r, l.plugged_size, "plugged_size");
  VMEM_GET(r, l.virtio.status, "status");
  VMEM_GET(r, l.virtio.driver_features, "driver_features");
  VMEM_GET(r, l.virtio.config_generation, "config_generation");
  VMEM_GET(r, l.virtio.isr, "isr");
  VMEM_GET_FLAG(r, l.virtio.broken, "broken");
  VMEM_GET_FLAG(r, l.virtio.config_notification_pending, "config_notification_pending");
  uint16_t nqueues = 0;
  VMEM_GET(r, nqueues, "queue count");
  if (nqueues > 1) return unexpected(Error{fmt::format("{} queues; virtio-mem has 1", nqueues)});
  for (uint16_t i = 0; i < nqueues; ++i) {
    QueueState q;
    VMEM_GET(r, q.size, "queue size");
    VMEM_GET_FLAG(r, q.ready, "queue ready");
    VMEM_GET(r, q.desc_table, "queue desc");
    VMEM_GET(r, q.avail_ring, "queue avail");
    VMEM_GET(r, q.used_ring, "queue used");
    VMEM_GET(r, q.next_avail, "queue next_avail");
    VMEM_GET(r, q.next_used, "queue next_used");
    VMEM_GET(r, q.signalled_used, "queue signalled_used");
    VMEM_GET_FLAG(r, q.signalled_used_valid, "queue signalled_used_valid");
    l.virtio.queues.push_back(q);
  }
  uint64_t nwords = 0;
  VMEM_GET(r, nwords, "bitmap word count");
  if (nwords > r.remaining() / 8) {
    return unexpected(
        Error{fmt::format("bitmap of {} words but only {} bytes left", nwords, r.remaining())});
  }
  l.words.resize(nwords);
  VMEM_TRY(r.get_words(l.words, "bitmap"));
  if (r.remaining() != 0) {
    return unexpected(Error{fmt::format("{} unexpected bytes after the bitmap", r.remaining())});
  }
  return l;
}

#undef VMEM_GET
#undef VMEM_GET_FLAG

template <class T>
Status same(std::string_view what, T theirs, T ours) {
  if (theirs == ours) return ok();
  return unexpected(
      Error{fmt::format("Property '{}' changed from {:#x} to {:#x}", what, theirs, ours)});
}

}  // namespace

std::vector<uint8_t> VirtioMemDevice::save() const {
  const auto quiet = quiesce();
  const auto lock = lock_state();
  ByteWriter w;
  w.put_bytes(kMagic);
  w.put(kVersion);
  w.put(options_.addr);
  w.put(options_.region_size);
  w.put(options_.block_size);
  w.put(options_.node_id);
  w.put(static_cast<uint8_t>(options_.profile));
  w.put(options_.usable_extent);
  w.put(offered_features_);
  w.put(requested_size_);
  w.put(usable_region_size_);
  w.put(plugged_size_);
  const VirtioDeviceState v = save_state();
  w.put(v.status);
  w.put(v.driver_features);
  w.put(v.config_generation);
  w.put(v.isr);
  w.put(static_cast<uint8_t>(v.broken));
  w.put(static_cast<uint8_t>(v.config_notification_pending));
  w.put(static_cast<uint16_t>(v.queues.size()));
  for (const QueueState& q : v.queues) {
    w.put(q.size);
    w.put(static_cast<uint8_t>(q.ready));
    w.put(q.desc_table);
    w.put(q.avail_ring);
    w.put(q.used_ring);
    w.put(q.next_avail);
    w.put(q.next_used);
    w.put(q.signalled_used);
    w.put(static_cast<uint8_t>(q.signalled_used_valid));
  }
  w.put(static_cast<uint64_t>(bitmap_.words().size()));
  w.put_words(bitmap_.words());
  return w.take();
}

Status VirtioMemDevice::load(std::span<const uint8_t> stream) {
  const auto quiet = quiesce();
  auto parsed = parse(stream);
  if (!parsed.has_value()) return unexpected(parsed.error());
  const Loaded& l = *parsed;

  // The geometry and the options that shape behaviour must match the target.
  VMEM_TRY(same("memaddr", l.addr, options_.addr));
  VMEM_TRY(same("size", l.region_size, options_.region_size));
  VMEM_TRY(same("block-size", l.block_size, options_.block_size));
  VMEM_TRY(same("node", l.node_id, options_.node_id));
  VMEM_TRY(same("profile", l.profile, static_cast<uint8_t>(options_.profile)));
  VMEM_TRY(same("usable extent", l.usable_extent, options_.usable_extent));
  VMEM_TRY(same("features", l.features, offered_features_));

  const uint64_t bs = options_.block_size;
  for (const auto& [name, value] : {std::pair{"requested_size", l.requested_size},
                                    std::pair{"usable_region_size", l.usable_region_size},
                                    std::pair{"plugged_size", l.plugged_size}}) {
    if (value % bs != 0) {
      return unexpected(
          Error{fmt::format("{} {:#x} is not a multiple of block-size {:#x}", name, value, bs)});
    }
  }
  if (l.usable_region_size > options_.region_size) {
    return unexpected(Error{fmt::format("usable_region_size {:#x} exceeds region_size {:#x}",
                                        l.usable_region_size, options_.region_size)});
  }
  if (l.requested_size > l.usable_region_size) {
    return unexpected(Error{fmt::format("requested_size {:#x} exceeds usable_region_size {:#x}",
                                        l.requested_size, l.usable_region_size)});
  }
  auto bitmap = BlockBitmap::from_words(options_.region_size / bs, l.words);
  if (!bitmap.has_value()) return unexpected(bitmap.error());
  const uint64_t usable_blocks = l.usable_region_size / bs;
  if (const uint64_t b = bitmap->find_next(true, usable_blocks, bitmap->size());
      b != bitmap->size()) {
    return unexpected(Error{fmt::format(
        "block {} is plugged but beyond the usable region ({} blocks)", b, usable_blocks)});
  }
  uint64_t plugged_size = bitmap->count() * bs;
  if (faulty(fault_, Fault::MigrationTrustsPluggedSize)) {
    plugged_size = l.plugged_size;
  } else if (l.plugged_size != plugged_size) {
    return unexpected(Error{fmt::format("plugged_size {:#x} does not match the bitmap ({:#x})",
                                        l.plugged_size, plugged_size)});
  }
  VMEM_TRY(check_state(l.virtio));

  // Tell listeners about the plugged memory before it is usable; one refusal fails the load and
  // takes back what was already announced, leaving everyone as before.
  if (hooks_ != nullptr) {
    uint64_t announced_end = 0;
    Status refused;
    bitmap->for_each_run(true, 0, bitmap->size(), [&](uint64_t first, uint64_t n) {
      auto s = hooks_->populate(first * bs, n * bs);
      if (!s.has_value()) {
        refused = unexpected(
            Error{fmt::format("a listener refused the populate replay: {}", s.error().message)});
        return false;
      }
      announced_end = first + n;
      return true;
    });
    if (!refused.has_value()) {
      bitmap->for_each_run(true, 0, announced_end, [&](uint64_t first, uint64_t n) {
        hooks_->discard(first * bs, n * bs);
        return true;
      });
      // Memslots mapped for the replay are unmapped again where this device has nothing plugged.
      hooks_->unplugged(0, options_.region_size);
      return refused;
    }
  }

  // Commit. Memory the source had unplugged is given back on the target too.
  auto lock = lock_state();
  bitmap_ = std::move(*bitmap);
  touched_.add(0, bitmap_.size());
  requested_size_ = l.requested_size;
  // The mutant keeps the target's own usable region, as QEMU's destination has between the early
  // bitmap and the late usable_region_size.
  if (!faulty(fault_, Fault::MigrationKeepsUsableRegion))
    usable_region_size_ = l.usable_region_size;
  plugged_size_ = plugged_size;
  restore_state(l.virtio);
  bitmap_.for_each_run(false, 0, bitmap_.size(), [&](uint64_t first, uint64_t n) {
    (void)region_.discard(first * bs, n * bs);
    return true;
  });
  sync_config(false, false);
  return ok();
}

VMEM_NAMESPACE_END
