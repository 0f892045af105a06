// vmemcheck: the command-line front end. Exceptions stop here; everything below returns values.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "cli/conform.h"
#include "cli/fuzz_campaign.h"
#include "cli/kvm_cost.h"
#include "cli/mutate.h"
#if VMEM_HAVE_PROOFS
#include "cli/prove.h"
#endif
#include "cli/replay.h"
#include "cli/requirements.h"
#include "cli/smoke.h"
#include "reference/mem/fault.h"

namespace {

// Sizes as QEMU writes them: 4096, 0x1000, 2M, 4G, 1T.
uint64_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  const uint64_t v = std::stoull(s, &pos, 0);
  const std::string unit = s.substr(pos);
  static const std::map<std::string, unsigned> shifts = {
      {"", 0},   {"K", 10},   {"k", 10},   {"M", 20},   {"G", 30},
      {"T", 40}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  auto it = shifts.find(unit);
  if (it == shifts.end()) throw CLI::ValidationError("size", "unknown unit in '" + s + "'");
  return v << it->second;
}

struct DeviceFlags {
  std::string addr = "4G", region = "4G", block = "2M", requested = "128M", extent = "256M";
  std::string profile = "spec", backing = "anonymous", fault;
  uint16_t node = 0;
  bool acpi_pxm = false;

  void add_to(CLI::App& app) {
    app.add_option("--profile", profile, "spec | qemu | qemu-7.2")->capture_default_str();
    app.add_option("--addr", addr, "guest-physical address of the region")->capture_default_str();
    app.add_option("--region-size", region, "size of the device region")->capture_default_str();
    app.add_option("--block-size", block, "block size (power of two)")->capture_default_str();
    app.add_option("--requested-size", requested, "initial requested size")->capture_default_str();
    app.add_option("--usable-extent", extent, "usable region extent past requested")
        ->capture_default_str();
    app.add_option("--node", node, "node id")->capture_default_str();
    app.add_flag("--acpi-pxm", acpi_pxm, "offer VIRTIO_MEM_F_ACPI_PXM");
    app.add_option("--backing", backing, "anonymous | shared | null")->capture_default_str();
    app.add_option("--fault", fault, "a named fault (mutants build only; see `vmemcheck faults`)");
  }

  vmem::DeviceOptions options() const {
    vmem::DeviceOptions o;
    o.addr = parse_size(addr);
    o.region_size = parse_size(region);
    o.block_size = parse_size(block);
    o.requested_size = parse_size(requested);
    o.usable_extent = parse_size(extent);
    o.node_id = node;
    o.acpi_pxm = acpi_pxm;
    o.fault = fault;
    auto p = vmem::profile_from_name(profile);
    if (!p) throw CLI::ValidationError("--profile", "unknown profile '" + profile + "'");
    o.profile = *p;
    return o;
  }

  vmem::BackingKind backing_kind() const {
    auto k = vmem::backing_from_name(backing);
    if (!k) throw CLI::ValidationError("--backing", "unknown backing '" + backing + "'");
    return *k;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmemcheck: conformance, fuzzing and proofs for virtio-mem devices"};
  app.require_subcommand(0, 1);

  DeviceFlags smoke_flags;
  CLI::App* smoke = app.add_subcommand("smoke", "a short scripted run of the reference device");
  smoke_flags.add_to(*smoke);

  vmem::cli::ConformOptions conform_opts;
  CLI::App* conform = app.add_subcommand(
      "conform", "the conformance suite against a target (the default with no subcommand)");
  conform
      ->add_option("--target", conform_opts.target,
                   "reference | reference-mmio (the built-in reference device) | qemu | "
                   "adapter:COMMAND (docs/adapter-protocol.md)")
      ->capture_default_str();
  conform
      ->add_option("--profile", conform_opts.profile, "reference profile: spec | qemu | qemu-7.2")
      ->capture_default_str();
  conform->add_option("--fault", conform_opts.fault,
                      "a named fault of the reference (vmemcheck-mutants only)");
  conform->add_option(
      "--filter", conform_opts.filters,
      "only this check (a name or a pattern such as 'resize-*'), or the checks covering this "
      "requirement ID; repeatable");
  conform->add_flag("--list", conform_opts.list, "list the checks and what they cover");
  conform->add_option("--spec", conform_opts.spec, "virtio version: 1.2 | 1.3 | 1.4")
      ->check(CLI::IsMember({"1.2", "1.3", "1.4"}))
      ->capture_default_str();
  conform->add_option("--expect", conform_opts.expect,
                      "compare with a baseline; exit 0 only when the run matches it");
  conform->add_option("--write-baseline", conform_opts.write_baseline,
                      "write this run's verdicts as a baseline");
  conform->add_option("--junit", conform_opts.junit, "write JUnit XML");
  conform->add_option("--json", conform_opts.json, "write the report as JSON");
  conform->add_option("--repro-dir", conform_opts.repro_dir,
                      "write a reproducer for every check with a FAIL, WARN or INFO");
  conform->add_option("--record-traces", conform_opts.trace_dir,
                      "write each check's run on device 0 as DIR/CHECK.trace, for `vmemcheck "
                      "prove --trace` and `vmemcheck replay`");
  conform->add_option("--trace-profile", conform_opts.trace_profile,
                      "the profile the recorded traces name (default: --profile for the "
                      "reference targets, qemu-7.2 for qemu, spec for adapters)");
  conform
      ->add_option("--timeout-ms", conform_opts.timeout_ms,
                   "how long to wait for each request's completion")
      ->capture_default_str();
  conform->add_option("--qemu", conform_opts.qemu_binary, "qemu target: the QEMU binary")
      ->capture_default_str();
  conform->add_option("--qemu-machine", conform_opts.qemu_machine, "qemu target: -M")
      ->capture_default_str();
  conform->add_option("--qemu-accel", conform_opts.qemu_accel,
                      "qemu target: kvm | tcg (default: kvm when usable)");
  conform->add_option("--qemu-arg", conform_opts.qemu_args,
                      "qemu target: one more QEMU argument (repeatable)");
  conform->add_flag("--verbose,-v", conform_opts.verbose,
                    "list every requirement, driver obligations included");
  conform->add_flag("--quiet,-q", conform_opts.quiet, "no output but the exit status");

  CLI::App* faults = app.add_subcommand("faults", "list the named faults of the mutants build");

  std::string cost_addr = "4G", cost_region = "1T", cost_block = "2M", cost_plugged = "1G";
  uint64_t cost_limit = 0;
  bool cost_dirty = false;
  CLI::App* cost =
      app.add_subcommand("kvm-cost", "KVM memslot metadata: one big memslot vs dynamic memslots");
  cost->add_option("--addr", cost_addr, "guest-physical address of the region")
      ->capture_default_str();
  cost->add_option("--region-size", cost_region, "size of the device region")
      ->capture_default_str();
  cost->add_option("--block-size", cost_block, "block size")->capture_default_str();
  cost->add_option("--plugged", cost_plugged, "plugged size")->capture_default_str();
  cost->add_option("--memslot-limit", cost_limit,
                   "memslots the device may use; 0: decide as QEMU does from KVM's memslot count")
      ->capture_default_str();
  cost->add_flag("--dirty-logging", cost_dirty, "include the dirty bitmaps (during migration)");

  std::string prove_filter, prove_fault;
  unsigned prove_timeout = 60000;
  unsigned prove_jobs = std::max(1U, std::thread::hardware_concurrency());
  CLI::App* prove =
      app.add_subcommand("prove", "run the Z3 proofs over the reference's decision code");
  prove->add_option("--filter", prove_filter, "only proofs whose name contains this");
  prove
      ->add_option("--timeout-ms", prove_timeout,
                   "per-proof timeout; a timeout counts as a failure")
      ->capture_default_str();
  prove->add_option("--fault", prove_fault,
                    "run against a named fault's logic (vmemcheck-mutants)");
  prove->add_option("--jobs,-j", prove_jobs, "proofs run at once (default: one per core)")
      ->check(CLI::Range(1U, 64U));
  std::string prove_trace;
  prove
      ->add_option("--trace", prove_trace,
                   "check a recorded trace (or every *.trace in a directory) step by step "
                   "against the block-state transition relation instead")
      ->check(CLI::ExistingPath);

  std::string req_id;
  bool req_json = false;
  CLI::App* reqs =
      app.add_subcommand("requirements", "the requirement catalog (DEV-n, DRV-n, GEN-n)");
  reqs->add_option("id", req_id, "one requirement, in full");
  reqs->add_flag("--json", req_json, "the catalog as JSON");
  bool req_markdown = false;
  reqs->add_flag("--markdown", req_markdown,
                 "the catalog and the checks covering each requirement (docs/requirements.md)");

  vmem::cli::MutateOptions mutate_opts;
  CLI::App* mutate = app.add_subcommand(
      "mutate", "the kill matrix: every named fault against each part (vmemcheck-mutants)");
  mutate->add_option("--parts", mutate_opts.parts, "conformance, invariants, proofs, fuzz")
      ->delimiter(',')
      ->capture_default_str();
  mutate->add_option("--only", mutate_opts.only, "only these faults");
  mutate->add_option("--out", mutate_opts.out, "results directory (per mutant, matrix.md/json)")
      ->capture_default_str();
  mutate->add_flag("--resume", mutate_opts.resume, "keep the parts already stored per mutant");
  mutate->add_option("--fuzz-time", mutate_opts.fuzz_time, "fuzz part: seconds per mutant")
      ->capture_default_str();
  mutate->add_option("--fuzzer", mutate_opts.fuzzer,
                     "fuzz part: the ops_mutants_fuzzer binary (preset fuzz)");
  mutate->add_option("--corpus", mutate_opts.corpus, "fuzz part: the seeds")->capture_default_str();
  mutate->add_option("--proof-timeout-ms", mutate_opts.proof_timeout_ms, "per proof")
      ->capture_default_str();
  mutate->add_option("--baseline", mutate_opts.baseline,
                     "a stored matrix.json: fail if a mutant it killed survives");

  vmem::cli::FuzzOptions fuzz_opts;
  CLI::App* fuzz = app.add_subcommand(
      "fuzz", "a fuzzing campaign on one target: run, merge, deduplicate, minimize, summarize");
  fuzz->add_option("--target", fuzz_opts.target,
                   "migration_stream, virtqueue, transport, ops, driver, qemu_diff")
      ->required();
  fuzz->add_option("--engine", fuzz_opts.engine, "libfuzzer | afl")->capture_default_str();
  fuzz->add_option("--time", fuzz_opts.time, "how long to fuzz: 90, 90s, 10m, 1h30m")
      ->capture_default_str();
  fuzz->add_option("--jobs", fuzz_opts.jobs,
                   "libFuzzer -fork=N (plain with 1); AFL++ one main and N-1 secondaries")
      ->capture_default_str();
  fuzz->add_option("--out", fuzz_opts.out,
                   "campaign directory (default build/campaigns/TARGET-ENGINE)");
  fuzz->add_flag("--resume", fuzz_opts.resume, "go on with the campaign in --out");
  fuzz->add_option("--build-dir", fuzz_opts.build_dir,
                   "where the engine binaries are (default build/fuzz/fuzz, build/afl/fuzz)");
  fuzz->add_option("--coverage-build-dir", fuzz_opts.coverage_build_dir,
                   "where the coverage preset's TARGET_replay is")
      ->capture_default_str();
  fuzz->add_option("--seeds", fuzz_opts.seeds, "seed corpus (default corpus/TARGET)");
  fuzz->add_option("--dict", fuzz_opts.dict,
                   "dictionary (default corpus/dictionaries/TARGET.dict when it exists)");
  fuzz->add_option("--status-interval", fuzz_opts.status_interval, "seconds between progress lines")
      ->capture_default_str();
  fuzz->add_option("--minimize-time", fuzz_opts.minimize_time, "seconds to minimize each crash")
      ->capture_default_str();
  fuzz->add_option("--input-timeout", fuzz_opts.input_timeout, "seconds per input")
      ->capture_default_str();

  std::string trace_file, record_file, replay_fault;
  CLI::App* replay = app.add_subcommand(
      "replay", "replay a trace on the reference device, checking its observations");
  replay->add_option("trace", trace_file, "trace file (docs/trace-format.md)")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_option("--record", record_file, "write the trace with every observation filled in");
  replay->add_option("--fault", replay_fault, "replay against a named fault (mutants build only)");

  try {
    app.parse(argc, argv);
    if (faults->parsed()) {
      for (const auto& f : vmem::fault_catalog()) {
        fmt::print("{:<36} {:<19} {:<24} {}\n", f.name, vmem::to_string(f.kind), f.expected_by,
                   f.bug_class);
      }
      return 0;
    }
    if (prove->parsed()) {
#if VMEM_HAVE_PROOFS
      if (!prove_trace.empty()) return vmem::cli::run_prove_trace(prove_trace);
      return vmem::cli::run_prove(prove_filter, prove_timeout, prove_fault, prove_jobs);
#else
      fmt::print(stderr, "vmemcheck: built without proofs (VMEM_BUILD_PROOFS=OFF)\n");
      return 2;
#endif
    }
    if (reqs->parsed()) return vmem::cli::run_requirements(req_id, req_json, req_markdown);
    if (cost->parsed()) {
      return vmem::cli::run_kvm_cost(parse_size(cost_addr), parse_size(cost_region),
                                     parse_size(cost_block), parse_size(cost_plugged), cost_limit,
                                     cost_dirty);
    }
    if (replay->parsed()) return vmem::cli::run_replay(trace_file, record_file, replay_fault);
    if (mutate->parsed()) return vmem::cli::run_mutate(mutate_opts);
    if (fuzz->parsed()) return vmem::cli::run_fuzz(fuzz_opts);
    if (smoke->parsed()) {
      return vmem::cli::run_smoke(smoke_flags.options(), smoke_flags.backing_kind());
    }
    // With no subcommand, the main job: the conformance suite against the reference device.
    return vmem::cli::run_conform(conform_opts);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "vmemcheck: {}\n", e.what());
    return 2;
  }
}
