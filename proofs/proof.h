// Z3 proofs about the reference's own decision code (decisions D3; issue: Z3-checked
// invariants). Each proof states the spec's intent in arithmetic that cannot overflow (128-bit
// bit-vectors where sums or products could), instantiates the device's templates from
// reference/mem/rules.h and consumer_rules.h with the symbolic word model, and asks Z3 for an
// input where the two differ. "unsat" proves the property for every input that meets the
// stated preconditions; "sat" is a failure with a counterexample; "unknown" (a timeout) counts
// as a failure too.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "reference/mem/fault.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

enum class Outcome { Proved, Failed, Unknown };
const char* to_string(Outcome o);

struct ProofResult {
  std::string name;
  std::string covers;  // requirement IDs and the sizes the proof covers
  Outcome outcome = Outcome::Unknown;
  std::string counterexample;  // "name=value ..." when failed
  // When the failing proof has one: the counterexample as a trace (docs/trace-format.md) that
  // replays on the reference and fails on the logic the proof ran against.
  std::string trace;
  double seconds = 0;
};

struct ProofOptions {
  Fault fault = Fault::None;  // run the proofs against a mutant's logic (mutants build only)
  unsigned timeout_ms = 60000;
};

struct Proof {
  std::string name;
  std::string covers;
  std::function<ProofResult(const ProofOptions&)> run;
  // The claim involves no code a fault of the catalog changes (a lemma about popcount, the range
  // masks, clipping, ...): against a mutant it repeats the fault-free result, so the kill matrix
  // (`vmemcheck-mutants mutate`) does not run it per mutant.
  bool fault_independent = false;
};

// Every proof, in a fixed order.
const std::vector<Proof>& all_proofs();

}  // namespace proofs
VMEM_NAMESPACE_END
