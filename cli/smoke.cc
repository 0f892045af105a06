#include "cli/smoke.h"

#include <fmt/format.h>

#include <functional>
#include <string>
#include <vector>

#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"

namespace vmem::cli {

namespace {

struct Step {
  std::string what;
  std::string requirement;
  std::function<std::string()> run;  // returns "" on success, else what went wrong
};

std::string expect_resp(Result<Response> got, RespType want, std::optional<BlockState> state = {}) {
  if (!got.has_value()) return got.error().message;
  if (got->type != want)
    return fmt::format("answered {}, expected {}", to_string(got->type), to_string(want));
  if (state && got->state != *state) {
    return fmt::format("state {}, expected {}", to_string(got->state), to_string(*state));
  }
  return "";
}

}  // namespace

int run_smoke(const DeviceOptions& options, BackingKind backing) {
  auto machine = Machine::create(options, backing);
  if (!machine.has_value()) {
    fmt::print(stderr, "vmemcheck: cannot create the device: {}\n", machine.error().message);
    return 2;
  }
  VirtioMemDevice& dev = *(*machine)->device;
  RequestDriver drv(dev, 1ULL << 20);
  const uint64_t bs = options.block_size;
  const uint64_t base = options.addr;
  auto cfg = [&] { return dev.config(); };

  fmt::print("vmemcheck smoke: reference device, profile {}, {} backing\n",
             profile_name(options.profile), to_string(backing));
  fmt::print("  region [{:#x}, +{:#x}), block size {:#x}, requested {:#x}, usable {:#x}\n", base,
             options.region_size, bs, cfg().requested_size, cfg().usable_region_size);

  const uint64_t want_blocks = std::min<uint64_t>(cfg().requested_size / bs, 4);
  const std::vector<Step> steps = {
      {"driver initialization", "GEN",
       [&]() -> std::string {
         const uint8_t s = drv.initialize();
         return s == 0x0f ? "" : fmt::format("status {:#x} after initialization", s);
       }},
      {"STATE of the first block", "DEV-47/48",
       [&] {
         return expect_resp(drv.request(VIRTIO_MEM_REQ_STATE, base, 1), RespType::Ack,
                            BlockState::Unplugged);
       }},
      {fmt::format("PLUG {} blocks", want_blocks), "DEV-29/30",
       [&]() -> std::string {
         if (want_blocks == 0) return "requested_size is 0: nothing to plug (use --requested-size)";
         auto e =
             expect_resp(drv.request(VIRTIO_MEM_REQ_PLUG, base, static_cast<uint16_t>(want_blocks)),
                         RespType::Ack);
         if (!e.empty()) return e;
         return cfg().plugged_size == want_blocks * bs
                    ? ""
                    : "plugged_size did not grow by the plugged size";
       }},
      {"PLUG the same blocks again", "DEV-27",
       [&] { return expect_resp(drv.request(VIRTIO_MEM_REQ_PLUG, base, 1), RespType::Error); }},
      {"PLUG a misaligned address", "DEV-26",
       [&] {
         return expect_resp(drv.request(VIRTIO_MEM_REQ_PLUG, base + bs / 2, 1), RespType::Error);
       }},
      {"STATE over plugged and unplugged blocks", "DEV-48",
       [&] {
         return expect_resp(
             drv.request(VIRTIO_MEM_REQ_STATE, base, static_cast<uint16_t>(want_blocks + 1)),
             RespType::Ack, BlockState::Mixed);
       }},
      {"UNPLUG the first block", "DEV-36/37",
       [&] { return expect_resp(drv.request(VIRTIO_MEM_REQ_UNPLUG, base, 1), RespType::Ack); }},
      {"device reset keeps blocks", "DEV-13",
       [&]() -> std::string {
         const uint64_t before = cfg().plugged_size;
         dev.write_status(0);
         if (drv.initialize() != 0x0f) return "re-initialization failed";
         return cfg().plugged_size == before ? "" : "plugged_size changed across a device reset";
       }},
      {"host resize notifies the driver", "DEV-9",
       [&]() -> std::string {
         (void)dev.read_and_clear_isr();
         auto r = dev.set_requested_size(std::min(options.region_size, cfg().requested_size + bs));
         if (!r.has_value()) return r.error().message;
         return (dev.isr() & VIRTIO_ISR_CONFIG) ? "" : "no configuration change interrupt";
       }},
      {"UNPLUG_ALL", "DEV-41/42",
       [&]() -> std::string {
         auto e = expect_resp(drv.request(VIRTIO_MEM_REQ_UNPLUG_ALL), RespType::Ack);
         if (!e.empty()) return e;
         return cfg().plugged_size == 0 ? "" : "plugged_size is not 0";
       }},
      {"unknown request type breaks the device", "QEMU behaviour",
       [&]() -> std::string {
         auto r = drv.request(7);
         if (r.has_value()) return "answered an unknown request type";
         return (dev.status() & VIRTIO_CONFIG_S_NEEDS_RESET) ? "" : "DEVICE_NEEDS_RESET not set";
       }},
  };

  int failed = 0;
  for (const Step& s : steps) {
    const std::string problem = s.run();
    fmt::print("  {:<4} {:<44} {}\n", problem.empty() ? "ok" : "FAIL", s.what, s.requirement);
    if (!problem.empty()) {
      fmt::print("       {}\n", problem);
      ++failed;
    }
  }
  fmt::print("{} passed, {} failed\n", steps.size() - failed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace vmem::cli
