// Throughput of the reference device (decisions D11). Figures and the command that produced them
// are in docs/benchmarks.md.
//
// Request benchmarks go through the full path: descriptor chains in guest memory -> pop and
// validation -> verdict -> response written -> used ring. The driver side pre-builds its chains
// once and then only republishes their heads, in batches of half the queue per notification, as
// a busy Linux driver would; its cost is included.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"

namespace vmem {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;
constexpr uint64_t kTiB = 1ULL << 40;

struct Bench {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<RequestDriver> driver;
  std::vector<uint16_t> heads;

  Bench(BackingKind backing, uint64_t region, uint64_t block) {
    DeviceOptions o;
    o.addr = 1ULL << 40;
    o.region_size = region;
    o.block_size = block;
    o.requested_size = region;
    o.queue_size = 256;
    machine = std::move(*Machine::create(o, backing));
    driver = std::make_unique<RequestDriver>(*machine->device, 1 * kMiB);
    driver->initialize();
  }

  // Pre-builds chains for `requests` (two descriptors each).
  void build(const std::vector<WireRequest>& requests) {
    DriverQueue& q = driver->queue();
    for (std::size_t i = 0; i < requests.size(); ++i) {
      heads.push_back(*q.build_chain(static_cast<uint16_t>(2 * i), encode_request(requests[i]),
                                     {{24}, {10}, false}));
    }
  }

  // Publishes every head once, kicks, and drains the used ring.
  void round() {
    DriverQueue& q = driver->queue();
    for (uint16_t h : heads)
      q.publish(h);
    machine->device->notify_queue(0);
    while (q.pop_used()) {
    }
  }

  uint64_t block(uint64_t i) const {
    return machine->device->options().addr + i * machine->device->options().block_size;
  }
};

void report(benchmark::State& state, std::size_t per_round) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_round));
}

void BM_StateSingleBlock(benchmark::State& state) {
  Bench b(static_cast<BackingKind>(state.range(0)), 4 * kGiB, 2 * kMiB);
  std::vector<WireRequest> reqs;
  for (uint64_t i = 0; i < 128; ++i)
    reqs.push_back({VIRTIO_MEM_REQ_STATE, {}, b.block(i), 1, {}});
  b.build(reqs);
  for (auto _ : state)
    b.round();
  report(state, reqs.size());
}

void BM_PlugUnplugPair(benchmark::State& state) {
  Bench b(static_cast<BackingKind>(state.range(0)), 4 * kGiB, 2 * kMiB);
  std::vector<WireRequest> reqs;
  for (uint64_t i = 0; i < 64; ++i) {
    reqs.push_back({VIRTIO_MEM_REQ_PLUG, {}, b.block(i), 1, {}});
    reqs.push_back({VIRTIO_MEM_REQ_UNPLUG, {}, b.block(i), 1, {}});
  }
  b.build(reqs);
  for (auto _ : state)
    b.round();
  if (b.machine->device->config().plugged_size != 0) state.SkipWithError("a request was refused");
  report(state, reqs.size());
}

// 65535-block PLUG then UNPLUG of the same range on a 1 TiB region.
void BM_RangePlugUnplug1TiB(benchmark::State& state) {
  const uint64_t block = static_cast<uint64_t>(state.range(1));
  Bench b(static_cast<BackingKind>(state.range(0)), kTiB, block);
  const uint64_t last = kTiB / block - 65535;
  b.build({{VIRTIO_MEM_REQ_PLUG, {}, b.block(last), 65535, {}},
           {VIRTIO_MEM_REQ_UNPLUG, {}, b.block(last), 65535, {}}});
  for (auto _ : state)
    b.round();
  if (b.machine->device->request_counters().count(VIRTIO_MEM_REQ_PLUG, RespType::Ack) == 0) {
    state.SkipWithError("plug refused");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * 65535 * block));
  report(state, 2);
}

// UNPLUG_ALL on a 1 TiB region with `range(2)` scattered single blocks plugged.
void BM_UnplugAll1TiB(benchmark::State& state) {
  const uint64_t block = static_cast<uint64_t>(state.range(1));
  const uint64_t plugged = static_cast<uint64_t>(state.range(2));
  Bench b(static_cast<BackingKind>(state.range(0)), kTiB, block);
  const uint64_t stride = kTiB / block / plugged;
  b.build({{VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}}});
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t i = 0; i < plugged; ++i)
      (void)b.machine->device->process({VIRTIO_MEM_REQ_PLUG, {}, b.block(i * stride), 1, {}});
    state.ResumeTiming();
    b.round();
  }
  if (b.machine->device->config().plugged_size != 0) state.SkipWithError("UNPLUG_ALL left blocks");
  report(state, 1);
}

constexpr auto kNull = static_cast<int64_t>(BackingKind::Null);
constexpr auto kAnon = static_cast<int64_t>(BackingKind::Anonymous);

BENCHMARK(BM_StateSingleBlock)->ArgName("backing")->Arg(kNull)->Arg(kAnon);
BENCHMARK(BM_PlugUnplugPair)->ArgName("backing")->Arg(kNull)->Arg(kAnon);
BENCHMARK(BM_RangePlugUnplug1TiB)
    ->ArgNames({"backing", "block"})
    ->Args({kNull, 2 * kMiB})
    ->Args({kNull, 4096})
    ->Args({kAnon, 2 * kMiB})
    ->Args({kAnon, 4096});
BENCHMARK(BM_UnplugAll1TiB)
    ->ArgNames({"backing", "block", "plugged"})
    ->Args({kAnon, 2 * kMiB, 1024})
    ->Args({kAnon, 4096, 1024})
    ->Args({kAnon, 4096, 65536})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vmem


BENCHMARK_MAIN();
