// What identifies a crash of a fuzz target, read from what its replay printed: the oracle line
// when a behavioural oracle fired, else the sanitizer's kind and the top frames of its stack
// that are not the runtime's, else how the process ended. Crashes with one key are one bug:
// `vmemcheck fuzz` keeps the smallest input of each.
#pragma once

#include <string>

#include "cli/process_group.h"

namespace vmem::cli {

struct Signature {
  std::string key;       // what deduplicates: the oracle line or the kind and top frames
  std::string oracle;    // "<target> oracle: ..." as printed, if any
  std::string headline;  // the sanitizer's ERROR or runtime error line, if any
  bool reproduced = false;
};

// `log`: what the replay printed; `e`: how it ended. Numbers in an oracle line or a UBSan message
// are blanked, so the same broken oracle on other values is one crash.
Signature signature_of(const std::string& log, const Exit& e);

// A short stable name for a key (FNV-1a, 8 hex digits).
std::string short_hash(const std::string& s);

}  // namespace vmem::cli
