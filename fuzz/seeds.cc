// Writes the seed corpora under corpus/ from named scenarios, so every seed has a readable
// origin. Usage: vmem_fuzz_seeds CORPUS_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"

namespace {

using namespace vmem;

// The migration_stream target's device: 256 MiB region, 64 MiB requested, queue at 1 MiB.
std::vector<uint8_t> migration_seed(const std::function<void(VirtioMemDevice&)>& scenario) {
  DeviceOptions o;
  o.region_size = 256ULL << 20;
  o.requested_size = 64ULL << 20;
  auto m = Machine::create(o, BackingKind::Null);
  RequestDriver driver(*(*m)->device, 1ULL << 20);
  driver.initialize();
  scenario(*(*m)->device);
  return (*m)->device->save();
}

void write(const std::filesystem::path& dir, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

Response plug(VirtioMemDevice& d, uint64_t block, uint16_t n) {
  return d.process(
      {VIRTIO_MEM_REQ_PLUG, {}, d.options().addr + block * d.options().block_size, n, {}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path ms = std::filesystem::path(argv[1]) / "migration_stream";
  write(ms, "initialized", migration_seed([](VirtioMemDevice&) {}));
  write(ms, "plugged_runs", migration_seed([](VirtioMemDevice& d) {
          plug(d, 0, 3);
          plug(d, 10, 1);
          plug(d, 63, 1);
        }));
  write(ms, "resized_up", migration_seed([](VirtioMemDevice& d) {
          (void)d.set_requested_size(128ULL << 20);
          plug(d, 60, 4);
        }));
  write(ms, "shrunk_by_unplug_all", migration_seed([](VirtioMemDevice& d) {
          plug(d, 5, 2);
          (void)d.set_requested_size(16ULL << 20);
          d.process({VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}});
        }));
  write(ms, "needs_reset", migration_seed([](VirtioMemDevice& d) {
          plug(d, 1, 1);
          d.process({7, {}, 0, 0, {}});
          d.write_status(static_cast<uint8_t>(d.status() | VIRTIO_CONFIG_S_FAILED));
        }));
  std::printf("seeds written to %s\n", argv[1]);
  return 0;
}
