// A main() for fuzz targets built without a fuzzing engine: runs LLVMFuzzerTestOneInput once per
// file named on the command line (directories are walked), so ctest replays seeds and
// regressions with any compiler and sanitizer.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) inputs += run_file(e.path());
      }
    } else {
      inputs += run_file(p);
    }
  }
  if (inputs == 0) {
    std::fprintf(stderr, "no inputs: pass files or directories\n");
    return 1;
  }
  std::printf("%d inputs replayed, 0 failed\n", inputs);
  return 0;
}
