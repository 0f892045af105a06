// `vmemcheck requirements`: the requirement catalog the suite judges by.
#pragma once

#include <string>

namespace vmem::cli {

int run_requirements(const std::string& id, bool json);

}  // namespace vmem::cli
