// The vmemcheck trace, version 1 (decisions D7): one line-based text format for what happened
// to a device, used by regressions, readable fuzz corpora, proof counterexamples, conformance
// recordings and kill evidence. docs/trace-format.md is its specification.
//
// A line is an operation, optionally followed by `->` and what was observed:
//   vmemtrace 1
//   device profile=spec addr=0x100000000 region_size=0x40000000 block_size=0x200000 ...
//   init -> status=0xf
//   request plug addr=0x100000000 nb=2 -> ack
//   host resize 0x10000000 -> ok
//   config -> plugged_size=0x400000 requested_size=0x10000000
// Observations are checked on replay: every token after `->` must appear among the tokens the
// replay observed, so a trace may check only the fields it cares about. Lines starting with '#' and
// blank lines are ignored.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reference/base/result.h"
#include "reference/mem/device_options.h"
#include "reference/memory/backing.h"

VMEM_NAMESPACE_BEGIN

inline constexpr int kTraceVersion = 1;

struct TraceOp {
  int line = 0;
  std::string verb;                       // request, host, init, config, status, isr, ...
  std::vector<std::string> args;          // positional words after the verb
  std::map<std::string, std::string> kv;  // key=value words before "->"
  std::vector<std::string> expect;        // tokens after "->" (empty: nothing to check)
  bool has_expect = false;
};

struct Trace {
  DeviceOptions options;
  BackingKind backing = BackingKind::Anonymous;
  std::string transport = "none";  // none | pci | mmio: what `reg` lines talk to
  std::vector<TraceOp> ops;
};

// A response code or block state as a trace spells it: lower case ("ACK" -> "ack").
std::string trace_word(std::string_view s);

// A guest request as a trace writes it, up to its options: "request plug addr=0x... nb=N"; a
// type beyond STATE by number. Every writer of traces (the fuzz targets, the suite's recorder)
// spells requests and answers with these two, and the replayer its observations.
std::string format_request(uint16_t type, uint64_t addr, uint16_t nb_blocks);
// The answer after "->": the response code ("ack"; a code beyond ERROR by number), and for an
// ACKed STATE the block state ("ack state=plugged"; a state beyond MIXED is left out).
std::string format_answer(uint16_t request_type, uint16_t resp, uint16_t state);

// A number as traces write it: decimal, or hexadecimal with a 0x prefix.
std::optional<uint64_t> parse_trace_number(std::string_view s);

// Parses a trace; errors name the line.
Result<Trace> parse_trace(std::string_view text);
// Renders a trace back to text (observations included), so parse(format(t)) == t.
std::string format_trace(const Trace& trace);
// The `device` line for a set of options.
std::string format_device_line(const DeviceOptions& o, BackingKind backing,
                               const std::string& transport);

struct ReplayMismatch {
  int line = 0;
  std::string op;        // the operation as written
  std::string expected;  // the tokens after "->"
  std::string observed;  // what the replay saw
};

struct ReplayReport {
  int steps = 0;
  std::optional<ReplayMismatch> mismatch;  // the first one; replay stops there
  std::optional<std::string> error;        // an operation could not run at all
  Trace recorded;                          // the trace with every observation filled in
  bool ok() const { return !mismatch && !error; }
};

// Replays a trace on a fresh reference device built from its `device` line. `fault` overrides
// the device's fault (mutants build), so one trace can be replayed against every mutant.
ReplayReport replay_trace(const Trace& trace, std::optional<std::string> fault = std::nullopt);

VMEM_NAMESPACE_END
