// Fuzz target `migration_stream`: arbitrary bytes into the migration loader (decisions D13).
// Oracle: the loader either refuses the stream with an error and leaves the device exactly as it
// was, or accepts it and the device then passes the full invariant check and saves back to the
// very same bytes. Any other outcome aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "fuzz/common/fuzz_support.h"
#include "reference/check/invariants.h"

namespace {

using namespace vmem;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  fuzz::oracle_failure("migration_stream", what, detail);
}

// One target device for the whole run, put back into its baseline after every accepted input.
struct Target {
  std::unique_ptr<Machine> machine =
      fuzz::initialized_machine(fuzz::migration_options(), "migration_stream");
  std::vector<uint8_t> baseline = machine->device->save();
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  VirtioMemDevice& dev = *t.machine->device;
  const std::span<const uint8_t> stream(data, size);
  auto loaded = dev.load(stream);
  if (!loaded.has_value()) {
    if (loaded.error().message.empty()) fail("refusal without a reason");
    if (dev.save() != t.baseline) fail("a refused stream changed the device");
    return 0;
  }
  InvariantChecker checker(dev);
  for (const Violation& v : checker.check_full())
    fail("accepted state violates", to_string(v));
  if (dev.save() != std::vector<uint8_t>(stream.begin(), stream.end())) {
    fail("an accepted stream does not save back to itself");
  }
  if (!dev.load(t.baseline).has_value()) fail("cannot restore the baseline");
  return 0;
}
