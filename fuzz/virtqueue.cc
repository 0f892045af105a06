// Fuzz target `virtqueue`: descriptor tables, available rings and request buffers built from
// the input, processed by the reference device through its split virtqueue: chains split any
// way, indirect tables, event idx, short, overlapping, looping and out-of-range descriptors.
// Oracle: no sanitizer report; every popped chain is used or detached exactly once; the device
// either answered every chain with a 10-byte response carrying a defined code, or stopped with
// DEVICE_NEEDS_RESET; the used index in guest memory is the device's; and the invariants hold.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "fuzz/common/fuzz_support.h"
#include "reference/base/endian.h"
#include "reference/check/invariants.h"
#include "reference/mem/machine.h"
#include "reference/virtqueue/driver_queue.h"

namespace {

using namespace vmem;

constexpr uint64_t kWindow = 1ULL << 20;  // rings and buffers live in [1 MiB, 1 MiB + 64 KiB)
constexpr uint64_t kDesc = kWindow;
constexpr uint64_t kAvail = kWindow + 0x800;
constexpr uint64_t kUsed = kWindow + 0x1000;
constexpr uint64_t kBuffers = kWindow + 0x2000;
constexpr uint64_t kBufferSpan = 0xe000;

[[noreturn]] void fail(const char* what) {
  fuzz::oracle_failure("virtqueue", what);
}

// Reads the input front to back; past the end everything is zero, so decoding never fails.
class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
  size_t left() const { return n_ - i_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

struct Target {
  std::unique_ptr<Machine> machine;
  Target() {
    DeviceOptions o;
    o.region_size = 1ULL << 30;
    o.requested_size = 256ULL << 20;
    auto m = Machine::create(o, BackingKind::Null);
    if (!m.has_value()) fail("cannot build the device");
    machine = std::move(*m);
  }
};

void put_desc(GuestMemory& mem, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
              uint16_t flags, uint16_t next) {
  uint8_t b[16];
  store_le(&b[0], addr);
  store_le(&b[8], len);
  store_le(&b[12], flags);
  store_le(&b[14], next);
  (void)mem.write(table + 16ULL * i, std::span<const uint8_t>(b, 16));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  static uint64_t detached_total = 0;
  VirtioMemDevice& dev = *t.machine->device;
  GuestMemory& mem = t.machine->mem;
  Bytes in(data, size);

  // A clean machine for every input, so each input means the same thing on its own.
  dev.system_reset();
  (void)dev.set_requested_size(256ULL << 20);
  std::vector<uint8_t> zero(0x10000, 0);
  (void)mem.write(kWindow, zero);

  const uint8_t shape = in.u8();
  const uint16_t qsize = static_cast<uint16_t>(1u << (1 + shape % 7));  // 2 .. 128
  const bool event_idx = shape & 0x10, indirect = shape & 0x20;
  uint64_t features = feature_bit(VIRTIO_F_VERSION_1) |
                      feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE) |
                      feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  if (event_idx) features |= feature_bit(VIRTIO_F_EVENT_IDX);
  if (indirect) features |= feature_bit(VIRTIO_F_INDIRECT_DESC);
  dev.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  dev.write_driver_features(0, static_cast<uint32_t>(features));
  dev.write_driver_features(1, static_cast<uint32_t>(features >> 32));
  dev.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                   VIRTIO_CONFIG_S_FEATURES_OK);
  SplitQueue& q = dev.queue(0);
  q.set_size(qsize);
  q.set_desc_table(kDesc);
  q.set_avail_ring(kAvail);
  q.set_used_ring(kUsed);
  q.set_ready(true);
  dev.write_status(0x0f);

  // Descriptors: addresses mostly inside the buffer area, sometimes raw; lengths mostly the
  // request and response sizes; any flags and next index.
  const uint16_t ndesc = static_cast<uint16_t>(1 + in.u8() % qsize);
  for (uint16_t i = 0; i < ndesc; ++i) {
    // kind: low nibble 15 = a raw address, else an offset in the buffer area; 0x20 = 24 bytes,
    // 0x40 = 10 bytes, 0x80 = an indirect table's size, none of them = a length byte.
    const uint8_t kind = in.u8();
    uint64_t addr = kBuffers + (in.u16() * 8ULL) % kBufferSpan;
    if ((kind & 0x0f) == 0x0f) addr = static_cast<uint64_t>(in.u16()) << (in.u8() % 48);
    uint32_t len = 0;
    if (kind & 0x20) {
      len = 24;
    } else if (kind & 0x40) {
      len = 10;
    } else if (kind & 0x80) {
      len = 16 * (1 + in.u8() % 8);
    } else {
      len = in.u8();
    }
    const uint16_t flags = static_cast<uint16_t>(in.u8() & 0x7);
    const uint16_t next = static_cast<uint16_t>(in.u8() % (qsize + 2));
    put_desc(mem, kDesc, i, addr, len, flags, next);
  }
  // The available ring: heads, used_event, and how far the driver moved avail->idx.
  const uint16_t pending = static_cast<uint16_t>(in.u8() % (qsize + 2));
  for (uint16_t i = 0; i < qsize; ++i) {
    uint8_t b[2];
    store_le<uint16_t>(b, static_cast<uint16_t>(in.u8() % (qsize + 1)));
    (void)mem.write(kAvail + 4 + 2ULL * i, std::span<const uint8_t>(b, 2));
  }
  uint8_t idx[2];
  store_le<uint16_t>(idx, pending);
  (void)mem.write(kAvail + 2, std::span<const uint8_t>(idx, 2));
  // Request bytes: the rest of the input fills the buffer area (types are biased to valid ones
  // by the device's own decoding: any 16-bit value is possible).
  std::vector<uint8_t> buffers(in.left());
  for (auto& b : buffers)
    b = in.u8();
  if (!buffers.empty())
    (void)mem.write(kBuffers, std::span<const uint8_t>(
                                  buffers.data(), std::min<size_t>(buffers.size(), kBufferSpan)));

  dev.notify_queue(0);

  // The oracle.
  if (q.popped() != q.used() + q.detached()) fail("a popped chain was neither used nor detached");
  uint8_t used_idx[2];
  if (!mem.read(kUsed + 2, std::span<uint8_t>(used_idx, 2)).has_value())
    fail("used ring unreadable");
  if (load_le<uint16_t>(used_idx) != q.state().next_used)
    fail("used index in memory is not the device's");
  // The queue's counters run across resets; next_used starts at 0 for every input.
  for (uint16_t i = 0; i < q.state().next_used; ++i) {
    uint8_t elem[8];
    (void)mem.read(kUsed + 4 + 8ULL * (i % qsize), std::span<uint8_t>(elem, 8));
    if (load_le<uint32_t>(&elem[4]) != kResponseSize)
      fail("a used length is not the response size");
    if (load_le<uint32_t>(&elem[0]) >= qsize) fail("a used id is not a descriptor index");
  }
  // VMEM_FUZZ_VERBOSE=1 says what happened to an input, for whoever is reading a crash or seed.
  if (std::getenv("VMEM_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(
        stderr,
        "virtqueue: queue %u, %u used, %llu detached in total, status %#x%s, plugged %#llx\n",
        unsigned{qsize}, unsigned{q.state().next_used},
        static_cast<unsigned long long>(q.detached()), unsigned{dev.status()},
        (dev.status() & VIRTIO_CONFIG_S_NEEDS_RESET) ? " (NEEDS_RESET)" : "",
        static_cast<unsigned long long>(dev.config().plugged_size));
  }
  const uint64_t detached_before = detached_total;
  detached_total = q.detached();
  if (q.detached() != detached_before && !(dev.status() & VIRTIO_CONFIG_S_NEEDS_RESET)) {
    fail("a chain was dropped without DEVICE_NEEDS_RESET");
  }
  InvariantChecker checker(dev);
  if (!checker.check_full().empty()) fail("invariants violated");
  return 0;
}
