#include "cli/prove.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "proofs/proof.h"
#include "proofs/trace_check.h"

namespace vmem::cli {

int run_prove(const std::string& filter, unsigned timeout_ms, const std::string& fault_name,
              unsigned jobs) {
  const auto fault = fault_from_name(fault_name);
  if (!fault) {
    fmt::print(stderr, "vmemcheck: unknown fault '{}' (see `vmemcheck faults`)\n", fault_name);
    return 2;
  }
  if (*fault != Fault::None && !kMutantsBuild) {
    fmt::print(stderr, "vmemcheck: --fault needs the mutants build: run vmemcheck-mutants\n");
    return 2;
  }
  std::vector<const proofs::Proof*> selected;
  for (const proofs::Proof& p : proofs::all_proofs()) {
    if (filter.empty() || p.name.find(filter) != std::string::npos) selected.push_back(&p);
  }
  if (selected.empty()) {
    fmt::print(stderr, "vmemcheck: no proof matches '{}'\n", filter);
    return 2;
  }
  // Workers take the next proof; results are printed in order as soon as all before are in.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::optional<proofs::ProofResult>> results(selected.size());
  std::mutex lock;
  std::condition_variable done;
  std::atomic<std::size_t> next{0};
  std::vector<std::jthread> workers;
  for (unsigned w = 0; w < std::min<std::size_t>(jobs, selected.size()); ++w) {
    workers.emplace_back([&] {
      for (std::size_t i; (i = next++) < selected.size();) {
        proofs::ProofResult r = selected[i]->run(proofs::ProofOptions{*fault, timeout_ms});
        const std::lock_guard<std::mutex> guard(lock);
        results[i] = std::move(r);
        done.notify_one();
      }
    });
  }
  int failed = 0;
  double total = 0;
  for (std::size_t i = 0; i < selected.size(); ++i) {
    std::unique_lock<std::mutex> guard(lock);
    done.wait(guard, [&] { return results[i].has_value(); });
    const proofs::ProofResult r = *results[i];
    guard.unlock();
    total += r.seconds;
    fmt::print("{:<8} {:<26} {:>8.2f} s  {}\n", to_string(r.outcome), r.name, r.seconds, r.covers);
    if (r.outcome != proofs::Outcome::Proved) {
      ++failed;
      fmt::print("         counterexample: {}\n", r.counterexample);
      if (!r.trace.empty()) fmt::print("         as a trace (vmemcheck replay):\n{}", r.trace);
    }
    std::fflush(stdout);
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} passed, {} failed ({:.1f} s of solver time, {:.1f} s wall clock, {} at a time)\n",
             selected.size() - failed, failed, total, wall, jobs);
  return failed == 0 ? 0 : 1;
}

namespace {

int prove_trace_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    fmt::print(stderr, "vmemcheck: cannot read {}\n", path);
    return 2;
  }
  const auto trace = parse_trace(text.str());
  if (!trace.has_value()) {
    fmt::print(stderr, "vmemcheck: {}: {}\n", path, trace.error().message);
    return 2;
  }
  const proofs::TraceCheck r = proofs::check_trace(*trace);
  if (r.error) {
    fmt::print(stderr, "vmemcheck: {}: {}\n", path, *r.error);
    return 2;
  }
  if (r.unexplained) {
    fmt::print("{}:{}: no transition explains `{}`: observed {}; the relation allows {}\n", path,
               r.unexplained->line, r.unexplained->op, r.unexplained->observed,
               r.unexplained->allowed);
    fmt::print("{} steps explained before it\n", r.explained);
    return 1;
  }
  fmt::print("{}: {} block-state steps explained by the transition relation ({}), {} passed over\n",
             path, r.explained, profile_name(trace->options.profile), r.passed_over);
  if (r.stopped) fmt::print("stopped early: {}\n", *r.stopped);
  return 0;
}

}  // namespace

int run_prove_trace(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return prove_trace_file(path);
  // A directory (`vmemcheck conform --record-traces`): every *.trace in it, in name order.
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.path().extension() == ".trace") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    fmt::print(stderr, "vmemcheck: no .trace files in {}\n", path);
    return 2;
  }
  int worst = 0;
  std::size_t rejected = 0;
  for (const std::string& f : files) {
    const int status = prove_trace_file(f);
    rejected += status == 1 ? 1 : 0;
    worst = std::max(worst, status);
  }
  fmt::print("{} of {} traces explained by the transition relation\n", files.size() - rejected,
             files.size());
  return worst;
}

}  // namespace vmem::cli
