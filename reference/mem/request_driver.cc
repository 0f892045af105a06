#include "reference/mem/request_driver.h"

#include <fmt/format.h>

VMEM_NAMESPACE_BEGIN

RequestDriver::RequestDriver(VirtioMemDevice& device, uint64_t queue_base)
    : device_(device), queue_(device.memory(), queue_base, device.queue(0).max_size()) {}

uint8_t RequestDriver::initialize(std::optional<uint64_t> features) {
  VirtioDevice& d = device_;
  d.write_status(0);
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  const uint64_t f = features.value_or(d.device_features());
  d.write_driver_features(0, static_cast<uint32_t>(f));
  d.write_driver_features(1, static_cast<uint32_t>(f >> 32));
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK);
  if (!(d.status() & VIRTIO_CONFIG_S_FEATURES_OK)) return d.status();
  queue_.reset();
  SplitQueue& q = d.queue(0);
  q.set_size(queue_.size());
  q.set_desc_table(queue_.desc_table());
  q.set_avail_ring(queue_.avail_ring());
  q.set_used_ring(queue_.used_ring());
  q.set_ready(true);
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  next_slot_ = 0;
  return d.status();
}

Result<DriverResult> RequestDriver::send(const WireRequest& request, const ChainShape& shape) {
  const auto bytes = encode_request(request);
  std::vector<uint8_t> req(bytes.begin(), bytes.end());
  // The shape may frame more or fewer readable bytes than 24, to build short or long requests.
  uint64_t readable = 0;
  for (uint32_t n : shape.readable)
    readable += n;
  req.resize(readable, 0);
  // Chains take consecutive slots; wrap to the start when the table runs out (one request is
  // in flight at a time, so the slots are free again).
  const uint16_t pieces = static_cast<uint16_t>(shape.readable.size() + shape.writable.size());
  if (shape.indirect ? next_slot_ + 1 > queue_.size() : next_slot_ + pieces > queue_.size())
    next_slot_ = 0;
  auto head = queue_.build_chain(next_slot_, req, shape);
  if (!head) return unexpected(Error{"the chain shape does not fit the queue"});
  next_slot_ = static_cast<uint16_t>(next_slot_ + (shape.indirect ? 1 : pieces));
  queue_.publish(*head);
  if (notify_) {
    notify_();
  } else {
    device_.notify_queue(0);
  }
  auto used = queue_.pop_used();
  if (!used) {
    if (device_.broken()) {
      return unexpected(
          Error{fmt::format("no response; the device needs a reset: {}", device_.broken_reason())});
    }
    return unexpected(Error{"no response: the device did not use the chain"});
  }
  if (used->id != *head) {
    return unexpected(Error{fmt::format("used element id {} is not the head {}", used->id, *head)});
  }
  uint32_t writable = 0;
  for (uint32_t n : shape.writable)
    writable += n;
  const auto raw = queue_.read_response(*head, std::min<uint32_t>(writable, kResponseSize));
  if (raw.size() < kResponseSize) {
    return unexpected(Error{fmt::format("response has {} bytes", raw.size())});
  }
  const WireResponse w =
      decode_response(std::span<const uint8_t, kResponseSize>(raw.data(), kResponseSize));
  return DriverResult{Response{static_cast<RespType>(w.type), static_cast<BlockState>(w.state)},
                      used->len};
}

Result<Response> RequestDriver::request(uint16_t type, uint64_t addr, uint16_t nb_blocks) {
  WireRequest r;
  r.type = type;
  r.addr = addr;
  r.nb_blocks = nb_blocks;
  auto res = send(r);
  if (!res.has_value()) return unexpected(res.error());
  return res->response;
}

VMEM_NAMESPACE_END
