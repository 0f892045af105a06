// `vmemcheck replay`: runs a trace (decisions D7) on the reference device.
#pragma once

#include <string>

namespace vmem::cli {

// Returns 0 when every observation matched, 1 on a mismatch, 2 when the trace cannot run.
int run_replay(const std::string& trace_file, const std::string& record_file,
               const std::string& fault);

}  // namespace vmem::cli
