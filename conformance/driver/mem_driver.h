// The suite's virtio-mem driver: the generic initialization sequence and one guest-request queue
// in the target's RAM, over any TransportDriver. Unlike a production driver it trusts nothing:
// chains are built exactly as a check asks (split, indirect, malformed), every completion wait
// is bounded, every used element is reported as the device wrote it, and the configuration is
// read with the generation loop so torn reads are told apart from a device that changes fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "conformance/driver/transport_driver.h"
#include "reference/mem/wire.h"
#include "reference/virtqueue/driver_queue.h"

namespace vmem::conformance {

// What came back for one chain.
struct Exchange {
  enum class Kind : uint8_t {
    Used,        // the device put a used element
    NeedsReset,  // no used element, and the device set DEVICE_NEEDS_RESET
    NoAnswer,    // neither, within the completion timeout
  };
  Kind kind = Kind::NoAnswer;
  uint16_t head = 0;     // the chain's head, as published
  uint32_t used_id = 0;  // as the device wrote them
  uint32_t used_len = 0;
  uint32_t writable = 0;                 // the chain's writable capacity
  std::vector<uint8_t> written;          // the writable bytes, up to min(used_len, capacity)
  std::optional<WireResponse> response;  // decoded when the device wrote at least 10 bytes
  uint8_t status = 0;                    // device status read after the exchange
};
const char* to_string(Exchange::Kind k);

class MemDriver {
 public:
  static constexpr uint16_t kQueue = 0;  // the guest-request queue
  static constexpr uint16_t kQueueSize = 64;

  MemDriver(Target& target, std::unique_ptr<TransportDriver> transport, uint64_t scratch_base,
            std::chrono::milliseconds completion_timeout);
  ~MemDriver();

  TransportDriver& transport() { return *transport_; }
  DriverQueue& queue() { return queue_; }

  // The whole configuration, read field by field until config_generation is the same before and
  // after (the generic rule), at most 16 rounds; a device whose generation never settles is an
  // error.
  Result<WireConfig> read_config();
  // How many rounds the last read_config needed (1 when nothing changed under it).
  unsigned last_config_rounds() const { return last_rounds_; }

  // Device reset: writes status 0 and waits (bounded) until it reads back 0.
  Status reset();
  // Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK (read back: a refusal stops here), queue 0,
  // DRIVER_OK. `features` defaults to the offered ones among VERSION_1 and the virtio-mem bits.
  // Returns the status read back at the end.
  Result<uint8_t> initialize(std::optional<uint64_t> features = std::nullopt);
  // The same sequence in steps, for checks that act between them: reset to FEATURES_OK (returns
  // the status read back), queue 0, DRIVER_OK (returns the status read back).
  Result<uint8_t> negotiate(std::optional<uint64_t> features = std::nullopt);
  Status setup_queue();
  Result<uint8_t> driver_ok();
  uint64_t offered() const { return offered_; }
  uint64_t negotiated() const { return negotiated_; }

  // Sends one chain whose readable bytes are `request` (any length), split as `shape` says, and
  // waits for its completion. An error means the target itself failed.
  Result<Exchange> exchange(std::span<const uint8_t> request, const ChainShape& shape);
  Result<Exchange> send(const WireRequest& r, const ChainShape& shape = {{24}, {10}, false});
  // Publishes `head`, whose descriptors the caller wrote into queue() itself (malformed ones
  // included), notifies, and waits as exchange() does. `writable` is the chain's writable
  // capacity, for the Exchange.
  Result<Exchange> submit(uint16_t head, uint32_t writable);
  // A plain request; the response, or an error saying why no well-formed one came.
  Result<WireResponse> request(uint16_t type, uint64_t addr = 0, uint16_t nb_blocks = 0);

 private:
  class TargetMemory;

  Target& target_;
  std::unique_ptr<TransportDriver> transport_;
  std::unique_ptr<TargetMemory> memory_;
  DriverQueue queue_;
  std::chrono::milliseconds timeout_;
  uint16_t next_slot_ = 0;
  uint64_t offered_ = 0;
  uint64_t negotiated_ = 0;
  unsigned last_rounds_ = 0;
};

}  // namespace vmem::conformance
