// What the fuzz targets and the seed writer share, so a seed always fits its target.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"

namespace vmem::fuzz {

// A broken oracle is a crash, so that libFuzzer and AFL++ keep the input.
[[noreturn]] inline void oracle_failure(const char* target, const char* what,
                                        const std::string& detail = {}) {
  std::fprintf(stderr, "%s oracle: %s %s\n", target, what, detail.c_str());
  std::abort();
}

// The fuzz input as a little-endian byte stream that reads zeros once it is used up, so every
// input decodes to something.
class InputBytes {
 public:
  InputBytes(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool empty() const { return p_ >= end_; }
  // The next `bytes` bytes (at most 8) as a little-endian number.
  uint64_t take(unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && p_ < end_; ++i)
      v |= uint64_t{*p_++} << (8 * i);
    return v;
  }
  template <class T>
  T take() {
    return static_cast<T>(take(sizeof(T)));
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Where the driver of a fuzzed machine keeps its rings.
inline constexpr uint64_t kQueueBase = 1ULL << 20;

// The migration_stream target's device: a 256 MiB region with 64 MiB requested.
inline DeviceOptions migration_options() {
  DeviceOptions o;
  o.region_size = 256ULL << 20;
  o.requested_size = 64ULL << 20;
  return o;
}

// A machine on a null backing whose driver set the queue up (so streams with a ready queue load).
inline std::unique_ptr<Machine> initialized_machine(const DeviceOptions& o, const char* target) {
  auto m = Machine::create(o, BackingKind::Null);
  if (!m.has_value()) oracle_failure(target, "cannot build the device", m.error().message);
  RequestDriver driver(*(*m)->device, kQueueBase);
  if (driver.initialize() != 0x0f) oracle_failure(target, "driver initialization failed");
  return std::move(*m);
}

}  // namespace vmem::fuzz
