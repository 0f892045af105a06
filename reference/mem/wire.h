// The virtio-mem wire format: constants, and the request (24 B), response (10 B) and
// configuration (56 B) layouts, encoded and decoded field by field in little endian.
// Nothing here casts a packed struct over guest memory.
//
// Source: virtio spec v1.4 "Memory Device" (device-types/mem/description.tex); the layouts are
// the same in 1.2 and 1.3. Linux names the STATE response field `state`; so do we.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "reference/base/endian.h"

VMEM_NAMESPACE_BEGIN

inline constexpr uint32_t VIRTIO_ID_MEM = 24;

// Device-specific feature bits.
inline constexpr unsigned VIRTIO_MEM_F_ACPI_PXM = 0;
inline constexpr unsigned VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE = 1;
inline constexpr unsigned VIRTIO_MEM_F_PERSISTENT_SUSPEND = 2;  // virtio 1.4

// Request types.
inline constexpr uint16_t VIRTIO_MEM_REQ_PLUG = 0;
inline constexpr uint16_t VIRTIO_MEM_REQ_UNPLUG = 1;
inline constexpr uint16_t VIRTIO_MEM_REQ_UNPLUG_ALL = 2;
inline constexpr uint16_t VIRTIO_MEM_REQ_STATE = 3;

// Response types.
inline constexpr uint16_t VIRTIO_MEM_RESP_ACK = 0;
inline constexpr uint16_t VIRTIO_MEM_RESP_NACK = 1;
inline constexpr uint16_t VIRTIO_MEM_RESP_BUSY = 2;
inline constexpr uint16_t VIRTIO_MEM_RESP_ERROR = 3;

// STATE results.
inline constexpr uint16_t VIRTIO_MEM_STATE_PLUGGED = 0;
inline constexpr uint16_t VIRTIO_MEM_STATE_UNPLUGGED = 1;
inline constexpr uint16_t VIRTIO_MEM_STATE_MIXED = 2;

inline constexpr std::size_t kRequestSize = 24;
inline constexpr std::size_t kResponseSize = 10;
inline constexpr std::size_t kConfigSize = 56;

enum class RequestType : uint16_t {
  Plug = VIRTIO_MEM_REQ_PLUG,
  Unplug = VIRTIO_MEM_REQ_UNPLUG,
  UnplugAll = VIRTIO_MEM_REQ_UNPLUG_ALL,
  State = VIRTIO_MEM_REQ_STATE,
};

enum class RespType : uint16_t {
  Ack = VIRTIO_MEM_RESP_ACK,
  Nack = VIRTIO_MEM_RESP_NACK,
  Busy = VIRTIO_MEM_RESP_BUSY,
  Error = VIRTIO_MEM_RESP_ERROR,
};

enum class BlockState : uint16_t {
  Plugged = VIRTIO_MEM_STATE_PLUGGED,
  Unplugged = VIRTIO_MEM_STATE_UNPLUGGED,
  Mixed = VIRTIO_MEM_STATE_MIXED,
};

// struct virtio_mem_req. `type` is kept raw: an unknown type is a value, not a decoding error.
struct WireRequest {
  uint16_t type = 0;
  std::array<uint16_t, 3> padding{};          // bytes 2..7, ignored by the device (DEV-24/31/38/44)
  uint64_t addr = 0;                          // bytes 8..15
  uint16_t nb_blocks = 0;                     // bytes 16..17
  std::array<uint16_t, 3> payload_padding{};  // bytes 18..23 (DEV-25/32/39/45)
  friend bool operator==(const WireRequest&, const WireRequest&) = default;
};

// struct virtio_mem_resp.
struct WireResponse {
  uint16_t type = 0;
  std::array<uint16_t, 3> padding{};
  uint16_t state = 0;  // meaningful only for an ACKed STATE request (DRV-20/21)
  friend bool operator==(const WireResponse&, const WireResponse&) = default;
};

// struct virtio_mem_config.
struct WireConfig {
  uint64_t block_size = 0;
  uint16_t node_id = 0;
  std::array<uint8_t, 6> padding{};
  uint64_t addr = 0;
  uint64_t region_size = 0;
  uint64_t usable_region_size = 0;
  uint64_t plugged_size = 0;
  uint64_t requested_size = 0;
  friend bool operator==(const WireConfig&, const WireConfig&) = default;
};

// Field offsets, as the spec lays them out.
namespace config_offset {
inline constexpr std::size_t block_size = 0;
inline constexpr std::size_t node_id = 8;
inline constexpr std::size_t padding = 10;
inline constexpr std::size_t addr = 16;
inline constexpr std::size_t region_size = 24;
inline constexpr std::size_t usable_region_size = 32;
inline constexpr std::size_t plugged_size = 40;
inline constexpr std::size_t requested_size = 48;
}  // namespace config_offset

WireRequest decode_request(std::span<const uint8_t, kRequestSize> bytes);
std::array<uint8_t, kRequestSize> encode_request(const WireRequest& r);
WireResponse decode_response(std::span<const uint8_t, kResponseSize> bytes);
std::array<uint8_t, kResponseSize> encode_response(const WireResponse& r);
WireConfig decode_config(std::span<const uint8_t, kConfigSize> bytes);
std::array<uint8_t, kConfigSize> encode_config(const WireConfig& c);

const char* to_string(RespType t);
const char* to_string(BlockState s);
const char* request_type_name(uint16_t type);  // "plug", ..., or "unknown"

VMEM_NAMESPACE_END
