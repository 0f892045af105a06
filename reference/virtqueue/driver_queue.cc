#include "reference/virtqueue/driver_queue.h"

#include <array>
#include <atomic>

#include "reference/base/endian.h"
#include "reference/virtqueue/split_queue.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

template <class T>
bool put(DriverMemory& mem, uint64_t gpa, T v) {
  if (uint8_t* p = mem.direct(gpa, sizeof(T))) {
    store_le(p, v);
    return true;
  }
  std::array<uint8_t, sizeof(T)> b{};
  store_le(b.data(), v);
  return mem.write(gpa, b);
}

template <class T>
std::optional<T> get(DriverMemory& mem, uint64_t gpa) {
  if (const uint8_t* p = mem.direct(gpa, sizeof(T))) return load_le<T>(p);
  std::array<uint8_t, sizeof(T)> b{};
  if (!mem.read(gpa, b)) return std::nullopt;
  return load_le<T>(b.data());
}

class InProcessMemory final : public DriverMemory {
 public:
  explicit InProcessMemory(GuestMemory& mem) : mem_(mem) {}
  bool read(uint64_t gpa, std::span<uint8_t> out) override {
    return mem_.read(gpa, out).has_value();
  }
  bool write(uint64_t gpa, std::span<const uint8_t> in) override {
    return mem_.write(gpa, in).has_value();
  }
  uint8_t* direct(uint64_t gpa, std::size_t len) override { return mem_.host_address(gpa, len); }

 private:
  GuestMemory& mem_;
};

struct Layout {
  uint64_t desc, avail, used, data, end;
};

Layout layout(uint64_t base, uint16_t size) {
  Layout l{};
  l.desc = base;
  l.avail = l.desc + kDescriptorSize * size;
  l.used = align_up(l.avail + 4 + 2ULL * size + 2, 4);
  l.data = align_up(l.used + 4 + 8ULL * size + 2, 16);
  l.end = l.data + 256ULL * size;
  return l;
}

}  // namespace

DriverQueue::DriverQueue(GuestMemory& mem, uint64_t base, uint16_t size)
    : DriverQueue(std::make_unique<InProcessMemory>(mem), nullptr, base, size) {}

DriverQueue::DriverQueue(DriverMemory& mem, uint64_t base, uint16_t size)
    : DriverQueue(nullptr, &mem, base, size) {}

DriverQueue::DriverQueue(std::unique_ptr<DriverMemory> owned, DriverMemory* mem, uint64_t base,
                         uint16_t size)
    : owned_(std::move(owned)),
      mem_(owned_ ? owned_.get() : mem),
      size_(size),
      base_(base),
      writable_of_(size) {
  const Layout l = layout(base, size);
  desc_ = l.desc;
  avail_ = l.avail;
  used_ = l.used;
  data_ = l.data;
  end_ = l.end;
  reset();
}

uint64_t DriverQueue::footprint(uint16_t size) {
  return layout(0, size).end;
}

void DriverQueue::reset() {
  // Start from zeroed rings, as a driver that allocated fresh memory would.
  std::vector<uint8_t> zero(data_ - base_, 0);
  (void)mem_->write(base_, zero);
  avail_idx_ = 0;
  last_used_ = 0;
}

void DriverQueue::adopt() {
  avail_idx_ = get<uint16_t>(*mem_, avail_ + 2).value_or(0);
  last_used_ = device_used_idx();
}

bool DriverQueue::write_descriptor(uint64_t table, uint16_t index, const Descriptor& d) {
  std::array<uint8_t, kDescriptorSize> b{};
  store_le(&b[0], d.addr);
  store_le(&b[8], d.len);
  store_le(&b[12], d.flags);
  store_le(&b[14], d.next);
  return mem_->write(table + kDescriptorSize * index, b);
}

bool DriverQueue::publish(uint16_t head) {
  if (!put<uint16_t>(*mem_, avail_ + 4 + 2ULL * (avail_idx_ % size_), head)) return false;
  std::atomic_thread_fence(std::memory_order_release);
  return set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
}

bool DriverQueue::set_avail_idx(uint16_t idx) {
  avail_idx_ = idx;
  return put<uint16_t>(*mem_, avail_ + 2, idx);
}

bool DriverQueue::set_avail_flags(uint16_t flags) {
  return put<uint16_t>(*mem_, avail_, flags);
}

bool DriverQueue::set_used_event(uint16_t idx) {
  return put<uint16_t>(*mem_, avail_ + 4 + 2ULL * size_, idx);
}

std::optional<uint16_t> DriverQueue::build_chain(uint16_t first_slot,
                                                 std::span<const uint8_t> request,
                                                 const ChainShape& shape) {
  const std::size_t pieces = shape.readable.size() + shape.writable.size();
  if (pieces == 0 || first_slot >= size_) return std::nullopt;
  uint64_t readable_total = 0;
  for (uint32_t n : shape.readable)
    readable_total += n;
  if (readable_total != request.size()) return std::nullopt;

  // Data for all pieces goes in the data slots from first_slot on; descriptors either in the
  // ring's table (consecutive slots) or in an indirect table placed in the last data slot.
  std::vector<Descriptor> descs;
  uint64_t cursor = data_slot(first_slot);
  const uint64_t data_end = shape.indirect ? end_ - 256 : end_;
  std::size_t consumed = 0;
  std::vector<std::pair<uint64_t, uint32_t>> writable;
  for (uint32_t n : shape.readable) {
    if (cursor + n > data_end) return std::nullopt;
    if (!mem_->write(cursor, request.subspan(consumed, n))) return std::nullopt;
    descs.push_back({cursor, n, 0, 0});
    consumed += n;
    cursor = align_up(cursor + n, 8);
  }
  for (uint32_t n : shape.writable) {
    if (cursor + n > data_end) return std::nullopt;
    std::vector<uint8_t> fill(n, 0xee);  // so a device that writes nothing is noticed
    (void)mem_->write(cursor, fill);
    descs.push_back({cursor, n, VIRTQ_DESC_F_WRITE, 0});
    writable.emplace_back(cursor, n);
    cursor = align_up(cursor + n, 8);
  }

  uint16_t head = first_slot;
  if (shape.indirect) {
    const uint64_t table = end_ - 256;
    if (descs.size() * kDescriptorSize > 256) return std::nullopt;
    for (std::size_t i = 0; i < descs.size(); ++i) {
      Descriptor d = descs[i];
      if (i + 1 < descs.size()) {
        d.flags |= VIRTQ_DESC_F_NEXT;
        d.next = static_cast<uint16_t>(i + 1);
      }
      write_descriptor(table, static_cast<uint16_t>(i), d);
    }
    write_descriptor(head, Descriptor{table, static_cast<uint32_t>(descs.size() * kDescriptorSize),
                                      VIRTQ_DESC_F_INDIRECT, 0});
  } else {
    if (first_slot + descs.size() > size_) return std::nullopt;
    for (std::size_t i = 0; i < descs.size(); ++i) {
      Descriptor d = descs[i];
      if (i + 1 < descs.size()) {
        d.flags |= VIRTQ_DESC_F_NEXT;
        d.next = static_cast<uint16_t>(first_slot + i + 1);
      }
      write_descriptor(static_cast<uint16_t>(first_slot + i), d);
    }
  }
  writable_of_[head] = std::move(writable);
  return head;
}

std::vector<uint8_t> DriverQueue::read_response(uint16_t head, uint32_t len) const {
  std::vector<uint8_t> out;
  if (head >= size_) return out;
  for (const auto& [gpa, n] : writable_of_[head]) {
    if (out.size() >= len) break;
    const uint32_t take = std::min<uint32_t>(n, len - static_cast<uint32_t>(out.size()));
    std::vector<uint8_t> piece(take);
    if (!mem_->read(gpa, piece)) break;
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

uint16_t DriverQueue::device_used_idx() const {
  return get<uint16_t>(*mem_, used_ + 2).value_or(0);
}

uint16_t DriverQueue::avail_event() const {
  return get<uint16_t>(*mem_, used_ + 4 + 8ULL * size_).value_or(0);
}

std::optional<UsedElement> DriverQueue::pop_used() {
  if (device_used_idx() == last_used_) return std::nullopt;
  std::atomic_thread_fence(std::memory_order_acquire);
  const uint64_t elem = used_ + 4 + 8ULL * (last_used_ % size_);
  const auto id = get<uint32_t>(*mem_, elem);
  const auto len = get<uint32_t>(*mem_, elem + 4);
  ++last_used_;
  if (!id || !len) return std::nullopt;
  return UsedElement{*id, *len};
}

VMEM_NAMESPACE_END
