// What a fuzz input did, as a trace (docs/trace-format.md), written only when VMEM_FUZZ_TRACE
// names a file: a finding becomes a regression that `vmemcheck replay` runs on any build.
#pragma once

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

#include "reference/mem/wire.h"
#include "reference/trace/trace.h"

namespace vmem::fuzz {

class TraceLog {
 public:
  explicit TraceLog(const char* target) : target_(target) {
    if (const char* p = std::getenv("VMEM_FUZZ_TRACE")) path_ = p;
  }
  bool on() const { return !path_.empty(); }
  template <class... Args>
  void line(fmt::format_string<Args...> f, Args&&... args) {
    if (on()) text_ += fmt::format(f, std::forward<Args>(args)...) + "\n";
  }
  // A guest request and the answer it must get (the state only for an ACKed STATE). The one
  // spelling of a `request` line for the fuzz targets; nothing is formatted when tracing is off,
  // which matters to `ops` and its thousands of requests a second.
  void request(uint16_t type, uint64_t addr, uint16_t nb_blocks, uint16_t resp, uint16_t state) {
    if (!on()) return;
    line("{} -> {}", format_request(type, addr, nb_blocks), format_answer(type, resp, state));
  }
  void write() const {
    if (!on()) return;
    std::ofstream(path_) << "vmemtrace 1\n# written by the " << target_ << " fuzz target (fuzz/"
                         << target_ << ".cc)\n"
                         << text_;
  }

 private:
  const char* target_;
  std::string path_;
  std::string text_;
};

using vmem::trace_word;  // a response code or block state as the trace spells it

}  // namespace vmem::fuzz
