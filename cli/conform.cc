#include "cli/conform.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "conformance/suite/checks.h"
#include "conformance/suite/report.h"
#include "conformance/suite/runner.h"
#include "conformance/target/adapter_target.h"
#include "conformance/target/qemu_target.h"
#include "conformance/target/reference_target.h"

namespace vmem::cli {

namespace {

using conformance::Outcome;

Result<std::unique_ptr<conformance::Target>> make_target(const ConformOptions& o) {
  if (o.target == "reference" || o.target == "reference-mmio") {
    conformance::ReferenceTargetOptions r;
    r.transport =
        o.target == "reference" ? conformance::Transport::Pci : conformance::Transport::Mmio;
    const auto profile = profile_from_name(o.profile);
    if (!profile) return unexpected(Error{fmt::format("unknown profile '{}'", o.profile)});
    r.profile = *profile;
    r.fault = o.fault;
    return std::unique_ptr<conformance::Target>(
        std::make_unique<conformance::ReferenceTarget>(std::move(r)));
  }
  if (o.target == "qemu") {
    conformance::QemuTargetOptions q;
    q.binary = o.qemu_binary;
    q.machine = o.qemu_machine;
    q.accel = o.qemu_accel;
    q.extra_args = o.qemu_args;
    return std::unique_ptr<conformance::Target>(
        std::make_unique<conformance::QemuTarget>(std::move(q)));
  }
  if (o.target.rfind("adapter:", 0) == 0) {
    conformance::AdapterTargetOptions a;
    a.command = o.target.substr(8);
    a.call_timeout = std::chrono::milliseconds(std::max(o.timeout_ms, 1000u));
    auto t = conformance::AdapterTarget::spawn(a);
    if (!t.has_value()) return unexpected(t.error());
    return std::unique_ptr<conformance::Target>(std::move(*t));
  }
  return unexpected(Error{fmt::format(
      "unknown target '{}' (reference, reference-mmio, qemu, adapter:COMMAND)", o.target)});
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

}  // namespace

int run_conform(const ConformOptions& o) {
  auto catalog = conformance::embedded_catalog();
  if (!catalog.has_value()) {
    fmt::print(stderr, "vmemcheck: the built-in catalog is broken: {}\n", catalog.error().message);
    return 2;
  }
  const auto& checks = conformance::all_checks();
  if (o.list) {
    for (const conformance::CheckDef* c : conformance::select_checks(checks, o.filters)) {
      fmt::print("{:<26} {:<60} {}\n", c->name, c->title, fmt::join(c->covers, " "));
    }
    return 0;
  }
  if (!o.fault.empty() && o.target.rfind("reference", 0) != 0) {
    fmt::print(stderr, "vmemcheck: --fault applies to the reference targets only\n");
    return 2;
  }
  auto target = make_target(o);
  if (!target.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", target.error().message);
    return 2;
  }

  conformance::RunOptions run;
  run.filters = o.filters;
  run.spec_version = o.spec;
  run.completion_timeout = std::chrono::milliseconds(o.timeout_ms);
  if (!o.trace_dir.empty()) {
    run.record_profile = !o.trace_profile.empty()              ? o.trace_profile
                         : o.target.rfind("reference", 0) == 0 ? o.profile
                         : o.target == "qemu"                  ? "qemu-7.2"
                                                               : "spec";
    if (!profile_from_name(run.record_profile)) {
      fmt::print(stderr, "vmemcheck: unknown profile '{}'\n", run.record_profile);
      return 2;
    }
  }
  if (!o.quiet) {
    fmt::print("vmemcheck conform: {} (virtio {})\n", (*target)->name(), o.spec);
    run.progress = [](const conformance::CheckResult& c, std::size_t i, std::size_t n) {
      fmt::print("  [{:>2}/{}] {:<26} {:<4} {:>7.1f} ms{}\n", i + 1, n, c.name,
                 to_string(c.outcome()), c.seconds * 1e3,
                 c.stopped.empty() ? "" : "  stopped: " + c.stopped);
    };
  }
  const conformance::Report report = conformance::run_suite(**target, *catalog, checks, run);
  if (!o.quiet) fmt::print("{}", conformance::format_text(report, o.verbose));

  int status = report.has(Outcome::Fail) || report.violations() != 0 ? 1 : 0;
  if (!o.json.empty() && !write_file(o.json, conformance::to_json(report).dump(2) + "\n")) {
    fmt::print(stderr, "vmemcheck: cannot write {}\n", o.json);
    return 2;
  }
  if (!o.junit.empty() && !write_file(o.junit, conformance::to_junit(report))) {
    fmt::print(stderr, "vmemcheck: cannot write {}\n", o.junit);
    return 2;
  }
  if (!o.write_baseline.empty() &&
      !write_file(o.write_baseline, conformance::to_baseline(report).dump(2) + "\n")) {
    fmt::print(stderr, "vmemcheck: cannot write {}\n", o.write_baseline);
    return 2;
  }
  if (!o.repro_dir.empty()) {
    auto files = conformance::write_reproducers(report, o.repro_dir);
    if (!files.has_value()) {
      fmt::print(stderr, "vmemcheck: {}\n", files.error().message);
      return 2;
    }
    if (!o.quiet) fmt::print("{} reproducer(s) in {}\n", files->size(), o.repro_dir);
  }
  if (!o.trace_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.trace_dir, ec);
    std::size_t written = 0;
    for (const conformance::CheckResult& c : report.checks) {
      if (c.trace.empty()) continue;
      const std::string path = (std::filesystem::path(o.trace_dir) / (c.name + ".trace")).string();
      if (!write_file(path, c.trace)) {
        fmt::print(stderr, "vmemcheck: cannot write {}\n", path);
        return 2;
      }
      ++written;
    }
    if (!o.quiet) fmt::print("{} trace(s) in {}\n", written, o.trace_dir);
  }
  if (!o.expect.empty()) {
    std::ifstream f(o.expect);
    const auto baseline = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (baseline.is_discarded()) {
      fmt::print(stderr, "vmemcheck: {} is not JSON\n", o.expect);
      return 2;
    }
    auto drift = conformance::compare_with_baseline(report, baseline);
    if (!drift.has_value()) {
      fmt::print(stderr, "vmemcheck: {}: {}\n", o.expect, drift.error().message);
      return 2;
    }
    for (const std::string& d : *drift)
      fmt::print("drift from {}: {}\n", o.expect, d);
    if (!o.quiet && drift->empty()) fmt::print("The run matches the baseline {}.\n", o.expect);
    // With a baseline, drift decides: a known FAIL keeps CI green, a change turns it red.
    status = drift->empty() && report.violations() == 0 ? 0 : 1;
  }
  return status;
}

}  // namespace vmem::cli
