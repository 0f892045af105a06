// `vmemcheck conform`: the conformance suite against a target, with its reports.
#pragma once

#include <string>
#include <vector>

namespace vmem::cli {

struct ConformOptions {
  std::string target = "reference";  // reference | reference-mmio | qemu | adapter:CMD
  std::string profile = "spec";      // of the reference targets
  std::string fault;                 // of the reference targets (vmemcheck-mutants)
  std::vector<std::string> filters;
  bool list = false;
  std::string spec = "1.4";
  std::string expect;          // a baseline to compare with (D15)
  std::string write_baseline;  // write this run as a baseline
  std::string junit, json, repro_dir;
  std::string trace_dir;       // record every check as DIR/CHECK.trace
  std::string trace_profile;   // the profile the traces name (empty: the target's)
  unsigned timeout_ms = 2000;  // per request completion
  // The qemu target.
  std::string qemu_binary = "qemu-system-x86_64";
  std::string qemu_machine = "q35";
  std::string qemu_accel;  // empty: kvm when usable, else tcg
  std::vector<std::string> qemu_args;
  bool verbose = false;
  bool quiet = false;
};

// 0: no FAIL (or, with a baseline, no drift); 1: FAIL or drift; 2: the run could not be made.
int run_conform(const ConformOptions& options);

}  // namespace vmem::cli
