#include "reference/mem/wire.h"

VMEM_NAMESPACE_BEGIN

WireRequest decode_request(std::span<const uint8_t, kRequestSize> b) {
  WireRequest r;
  r.type = load_le<uint16_t>(&b[0]);
  for (std::size_t i = 0; i < 3; ++i)
    r.padding[i] = load_le<uint16_t>(&b[2 + 2 * i]);
  r.addr = load_le<uint64_t>(&b[8]);
  r.nb_blocks = load_le<uint16_t>(&b[16]);
  for (std::size_t i = 0; i < 3; ++i)
    r.payload_padding[i] = load_le<uint16_t>(&b[18 + 2 * i]);
  return r;
}

std::array<uint8_t, kRequestSize> encode_request(const WireRequest& r) {
  std::array<uint8_t, kRequestSize> b{};
  store_le(&b[0], r.type);
  for (std::size_t i = 0; i < 3; ++i)
    store_le(&b[2 + 2 * i], r.padding[i]);
  store_le(&b[8], r.addr);
  store_le(&b[16], r.nb_blocks);
  for (std::size_t i = 0; i < 3; ++i)
    store_le(&b[18 + 2 * i], r.payload_padding[i]);
  return b;
}

WireResponse decode_response(std::span<const uint8_t, kResponseSize> b) {
  WireResponse r;
  r.type = load_le<uint16_t>(&b[0]);
  for (std::size_t i = 0; i < 3; ++i)
    r.padding[i] = load_le<uint16_t>(&b[2 + 2 * i]);
  r.state = load_le<uint16_t>(&b[8]);
  return r;
}

std::array<uint8_t, kResponseSize> encode_response(const WireResponse& r) {
  std::array<uint8_t, kResponseSize> b{};
  store_le(&b[0], r.type);
  for (std::size_t i = 0; i < 3; ++i)
    store_le(&b[2 + 2 * i], r.padding[i]);
  store_le(&b[8], r.state);
  return b;
}

WireConfig decode_config(std::span<const uint8_t, kConfigSize> b) {
  WireConfig c;
  c.block_size = load_le<uint64_t>(&b[config_offset::block_size]);
  c.node_id = load_le<uint16_t>(&b[config_offset::node_id]);
  for (std::size_t i = 0; i < c.padding.size(); ++i)
    c.padding[i] = b[config_offset::padding + i];
  c.addr = load_le<uint64_t>(&b[config_offset::addr]);
  c.region_size = load_le<uint64_t>(&b[config_offset::region_size]);
  c.usable_region_size = load_le<uint64_t>(&b[config_offset::usable_region_size]);
  c.plugged_size = load_le<uint64_t>(&b[config_offset::plugged_size]);
  c.requested_size = load_le<uint64_t>(&b[config_offset::requested_size]);
  return c;
}

std::array<uint8_t, kConfigSize> encode_config(const WireConfig& c) {
  std::array<uint8_t, kConfigSize> b{};
  store_le(&b[config_offset::block_size], c.block_size);
  store_le(&b[config_offset::node_id], c.node_id);
  for (std::size_t i = 0; i < c.padding.size(); ++i)
    b[config_offset::padding + i] = c.padding[i];
  store_le(&b[config_offset::addr], c.addr);
  store_le(&b[config_offset::region_size], c.region_size);
  store_le(&b[config_offset::usable_region_size], c.usable_region_size);
  store_le(&b[config_offset::plugged_size], c.plugged_size);
  store_le(&b[config_offset::requested_size], c.requested_size);
  return b;
}

const char* to_string(RespType t) {
  switch (t) {
    case RespType::Ack:
      return "ACK";
    case RespType::Nack:
      return "NACK";
    case RespType::Busy:
      return "BUSY";
    case RespType::Error:
      return "ERROR";
  }
  return "?";
}

const char* to_string(BlockState s) {
  switch (s) {
    case BlockState::Plugged:
      return "PLUGGED";
    case BlockState::Unplugged:
      return "UNPLUGGED";
    case BlockState::Mixed:
      return "MIXED";
  }
  return "?";
}

const char* request_type_name(uint16_t type) {
  switch (type) {
    case VIRTIO_MEM_REQ_PLUG:
      return "plug";
    case VIRTIO_MEM_REQ_UNPLUG:
      return "unplug";
    case VIRTIO_MEM_REQ_UNPLUG_ALL:
      return "unplug_all";
    case VIRTIO_MEM_REQ_STATE:
      return "state";
    default:
      return "unknown";
  }
}

VMEM_NAMESPACE_END
