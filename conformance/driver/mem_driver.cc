#include "conformance/driver/mem_driver.h"

#include <fmt/format.h>

#include <thread>

#include "reference/virtio/virtio_device.h"
#include "reference/virtqueue/split_queue.h"

namespace vmem::conformance {

const char* to_string(Exchange::Kind k) {
  switch (k) {
    case Exchange::Kind::Used:
      return "used";
    case Exchange::Kind::NeedsReset:
      return "no used element, DEVICE_NEEDS_RESET set";
    case Exchange::Kind::NoAnswer:
      return "no used element and no DEVICE_NEEDS_RESET";
  }
  return "?";
}

// The queue's view of the target's RAM.
class MemDriver::TargetMemory final : public DriverMemory {
 public:
  explicit TargetMemory(Target& t) : t_(t) {}
  bool read(uint64_t gpa, std::span<uint8_t> out) override { return keep(t_.mem_read(gpa, out)); }
  bool write(uint64_t gpa, std::span<const uint8_t> in) override {
    return keep(t_.mem_write(gpa, in));
  }
  // The first error since the last call: DriverQueue reports only that an access failed.
  std::optional<Error> take_error() { return std::exchange(error_, std::nullopt); }

 private:
  bool keep(const Status& s) {
    if (!s.has_value() && !error_) error_ = s.error();
    return s.has_value();
  }
  Target& t_;
  std::optional<Error> error_;
};

MemDriver::MemDriver(Target& target, std::unique_ptr<TransportDriver> transport,
                     uint64_t scratch_base, std::chrono::milliseconds completion_timeout)
    : target_(target),
      transport_(std::move(transport)),
      memory_(std::make_unique<TargetMemory>(target)),
      queue_(*memory_, scratch_base, kQueueSize),
      timeout_(completion_timeout) {}

MemDriver::~MemDriver() = default;

Result<WireConfig> MemDriver::read_config() {
  // 64-bit fields are read as two dwords, low first, as Linux does on virtio-pci: the
  // generation loop is what makes that safe.
  auto read64 = [&](uint32_t off) -> Result<uint64_t> {
    VMEM_ASSIGN_OR_RETURN(uint64_t lo, transport_->config_read(off, 4));
    VMEM_ASSIGN_OR_RETURN(uint64_t hi, transport_->config_read(off + 4, 4));
    return (lo & 0xffffffffu) | (hi << 32);
  };
  for (unsigned round = 1; round <= 16; ++round) {
    VMEM_ASSIGN_OR_RETURN(uint32_t before, transport_->config_generation());
    WireConfig c;
    VMEM_ASSIGN_OR_RETURN(c.block_size, read64(config_offset::block_size));
    VMEM_ASSIGN_OR_RETURN(uint64_t node, transport_->config_read(config_offset::node_id, 2));
    c.node_id = static_cast<uint16_t>(node);
    VMEM_ASSIGN_OR_RETURN(c.addr, read64(config_offset::addr));
    VMEM_ASSIGN_OR_RETURN(c.region_size, read64(config_offset::region_size));
    VMEM_ASSIGN_OR_RETURN(c.usable_region_size, read64(config_offset::usable_region_size));
    VMEM_ASSIGN_OR_RETURN(c.plugged_size, read64(config_offset::plugged_size));
    VMEM_ASSIGN_OR_RETURN(c.requested_size, read64(config_offset::requested_size));
    VMEM_ASSIGN_OR_RETURN(uint32_t after, transport_->config_generation());
    if (before == after) {
      last_rounds_ = round;
      return c;
    }
  }
  return unexpected(Error{"config_generation changed during each of 16 configuration reads"});
}

Status MemDriver::reset() {
  VMEM_TRY(transport_->set_status(0));
  // The generic rule: the driver waits for the status to read 0 before it goes on; as long as
  // a completion, at least one read.
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    VMEM_ASSIGN_OR_RETURN(uint8_t s, transport_->status());
    if (s == 0) {
      queue_.reset();
      next_slot_ = 0;
      return ok();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return unexpected(Error{fmt::format("device status reads {:#x}, not 0, {} ms after a reset",
                                          s, timeout_.count())});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<uint8_t> MemDriver::initialize(std::optional<uint64_t> features) {
  VMEM_ASSIGN_OR_RETURN(uint8_t s, negotiate(features));
  if (!(s & VIRTIO_CONFIG_S_FEATURES_OK)) return s;  // refused (GEN-3); the caller judges
  VMEM_TRY(setup_queue());
  return driver_ok();
}

Result<uint8_t> MemDriver::negotiate(std::optional<uint64_t> features) {
  VMEM_TRY(reset());
  VMEM_TRY(transport_->set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE));
  VMEM_TRY(transport_->set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER));
  VMEM_ASSIGN_OR_RETURN(offered_, transport_->device_features());
  const uint64_t known = feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_MEM_F_ACPI_PXM) |
                         feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE) |
                         feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  negotiated_ = features.value_or(offered_ & known);
  VMEM_TRY(transport_->set_driver_features(negotiated_));
  uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
  VMEM_TRY(transport_->set_status(s));
  return transport_->status();
}

Status MemDriver::setup_queue() {
  VMEM_ASSIGN_OR_RETURN(uint16_t max, transport_->queue_max_size(kQueue));
  if (max == 0) return unexpected(Error{"queue 0 reports a maximum size of 0"});
  if (max < kQueueSize) {
    return unexpected(
        Error{fmt::format("queue 0 allows {} entries; the suite needs {}", max, kQueueSize)});
  }
  return transport_->setup_queue(kQueue, kQueueSize, queue_.desc_table(), queue_.avail_ring(),
                                 queue_.used_ring());
}

Result<uint8_t> MemDriver::driver_ok() {
  VMEM_ASSIGN_OR_RETURN(uint8_t s, transport_->status());
  VMEM_TRY(transport_->set_status(s | VIRTIO_CONFIG_S_DRIVER_OK));
  return transport_->status();
}

Result<Exchange> MemDriver::exchange(std::span<const uint8_t> request, const ChainShape& shape) {
  const uint16_t pieces =
      shape.indirect ? 1 : static_cast<uint16_t>(shape.readable.size() + shape.writable.size());
  if (next_slot_ + pieces > kQueueSize) next_slot_ = 0;
  (void)memory_->take_error();
  const auto head = queue_.build_chain(next_slot_, request, shape);
  if (auto e = memory_->take_error()) return unexpected(*e);
  if (!head) return unexpected(Error{"the chain does not fit the driver's queue"});
  next_slot_ = static_cast<uint16_t>(next_slot_ + pieces);
  uint32_t writable = 0;
  for (uint32_t n : shape.writable)
    writable += n;
  return submit(*head, writable);
}

Result<Exchange> MemDriver::submit(uint16_t head, uint32_t writable) {
  Exchange x;
  x.head = head;
  x.writable = writable;
  (void)memory_->take_error();
  if (!queue_.publish(head)) {
    return unexpected(memory_->take_error().value_or(Error{"cannot write the available ring"}));
  }
  VMEM_TRY(transport_->notify(kQueue));

  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (unsigned poll = 0;; ++poll) {
    if (auto used = queue_.pop_used()) {
      x.kind = Exchange::Kind::Used;
      x.used_id = used->id;
      x.used_len = used->len;
      if (used->id == head) {
        x.written = queue_.read_response(head, std::min(used->len, x.writable));
        if (x.written.size() >= kResponseSize) {
          x.response = decode_response(
              std::span<const uint8_t, kResponseSize>(x.written.data(), kResponseSize));
        }
      }
      break;
    }
    VMEM_ASSIGN_OR_RETURN(uint8_t s, transport_->status());
    if (s & VIRTIO_CONFIG_S_NEEDS_RESET) {
      x.kind = Exchange::Kind::NeedsReset;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (poll > 64) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  VMEM_ASSIGN_OR_RETURN(x.status, transport_->status());
  return x;
}

Result<Exchange> MemDriver::send(const WireRequest& r, const ChainShape& shape) {
  const auto bytes = encode_request(r);
  return exchange(bytes, shape);
}

Result<WireResponse> MemDriver::request(uint16_t type, uint64_t addr, uint16_t nb_blocks) {
  WireRequest r;
  r.type = type;
  r.addr = addr;
  r.nb_blocks = nb_blocks;
  VMEM_ASSIGN_OR_RETURN(Exchange x, send(r));
  if (x.kind != Exchange::Kind::Used) {
    return unexpected(Error{fmt::format("{} {:#x}+{}: {}", request_type_name(type), addr, nb_blocks,
                                        to_string(x.kind))});
  }
  if (x.used_id != x.head) {
    return unexpected(Error{fmt::format("{}: used element id {} for head {}",
                                        request_type_name(type), x.used_id, x.head)});
  }
  if (!x.response) {
    return unexpected(Error{fmt::format("{}: used length {}, a response is {} bytes",
                                        request_type_name(type), x.used_len, kResponseSize)});
  }
  return *x.response;
}

}  // namespace vmem::conformance
