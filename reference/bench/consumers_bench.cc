// Cost of the discard manager and its consumers (issue: discard manager). Figures and commands
// in docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "reference/discard/discard_manager.h"
#include "reference/mem/machine.h"
#include "reference/vfio/vfio_listener.h"

namespace vmem {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

struct Rig {
  std::unique_ptr<Machine> machine;
  DiscardPermission permission;
  std::unique_ptr<DiscardManager> manager;
  std::vector<std::unique_ptr<VfioType1Container>> containers;
  std::vector<std::unique_ptr<VfioMemoryListener>> vfio;

  Rig(uint64_t region, uint64_t block, int listeners, uint32_t entry_limit) {
    DeviceOptions o;
    o.addr = 1ULL << 40;
    o.region_size = region;
    o.block_size = block;
    o.requested_size = region;
    machine = std::move(*Machine::create(o, BackingKind::Null));
    manager = std::move(*DiscardManager::attach(*machine->device, permission));
    for (int i = 0; i < listeners; ++i) {
      containers.push_back(std::make_unique<VfioType1Container>(VfioContainerOptions{.dma_entry_limit = entry_limit}));
      vfio.push_back(std::move(*VfioMemoryListener::create(*containers.back(), *manager, permission,
                                                           o.addr, {Profile::Spec, 512})));
      if (!vfio.back()->region_add({0, region}).has_value()) std::abort();
    }
  }
  Response plug(uint64_t block) {
    const DeviceOptions& o = machine->device->options();
    return machine->device->process({VIRTIO_MEM_REQ_PLUG, {}, o.addr + block * o.block_size, 1, {}});
  }
};

// 1 GiB plugged in 2 MiB blocks, one PLUG request per block, with 0, 1 or 2 VFIO containers.
void BM_Plug1GiBIn2MiBBlocks(benchmark::State& state) {
  Rig r(64 * kGiB, 2 * kMiB, static_cast<int>(state.range(0)), 65535);
  for (auto _ : state) {
    for (uint64_t b = 0; b < 512; ++b) {
      if (r.plug(b).type != RespType::Ack) state.SkipWithError("plug refused");
    }
    state.PauseTiming();
    (void)r.machine->device->process({VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}});
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 512));
}

// UNPLUG_ALL of a 1 TiB device, 2 MiB blocks, with 1024 scattered blocks plugged and 2 VFIO
// containers whose entry limit (600000) fits the budget of 524288 mappings + 512 memslots.
void BM_UnplugAll1TiBWithVfio(benchmark::State& state) {
  Rig r(1ULL << 40, 2 * kMiB, static_cast<int>(state.range(0)), 600000);
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t i = 0; i < 1024; ++i) (void)r.plug(i * 512);
    state.ResumeTiming();
    if (r.machine->device->process({VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}}).type != RespType::Ack) {
      state.SkipWithError("unplug-all refused");
    }
  }
  for (const auto& c : r.containers) {
    if (!c->mappings().empty()) state.SkipWithError("mappings left behind");
  }
}

BENCHMARK(BM_Plug1GiBIn2MiBBlocks)->ArgName("vfio_containers")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_UnplugAll1TiBWithVfio)->ArgName("vfio_containers")->Arg(0)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vmem
BENCHMARK_MAIN();
