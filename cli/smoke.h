// `vmemcheck smoke`: a short scripted run of the reference device through its virtqueue, which
// checks each answer against what the spec requires and prints what it did.
#pragma once

#include "reference/mem/device_options.h"
#include "reference/memory/backing.h"

namespace vmem::cli {

// Returns the process exit status: 0 if every step behaved as expected.
int run_smoke(const DeviceOptions& options, BackingKind backing);

}  // namespace vmem::cli
