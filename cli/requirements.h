// `vmemcheck requirements`: the requirement catalog the suite judges by.
#pragma once

#include <string>

namespace vmem::cli {

int run_requirements(const std::string& id, bool json, bool markdown);

}  // namespace vmem::cli
