// The suite's checks, one adder per file.
#pragma once

#include <vector>

#include "conformance/suite/check.h"

namespace vmem::conformance {

void add_config_checks(std::vector<CheckDef>& out);     // checks_config.cc
void add_request_checks(std::vector<CheckDef>& out);    // checks_requests.cc
void add_lifecycle_checks(std::vector<CheckDef>& out);  // checks_lifecycle.cc
void add_virtqueue_checks(std::vector<CheckDef>& out);  // checks_virtqueue.cc

}  // namespace vmem::conformance
