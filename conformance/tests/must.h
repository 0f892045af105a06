// MUST(expr): the value of a Result, or a fatal test failure naming the expression. For tests
// whose every step depends on the previous one (a live QEMU), where carrying on is pointless.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <utility>

#include "reference/base/result.h"

namespace vmem::conformance::test {

template <class T>
T must(Result<T> r, const char* what) {
  if (!r.has_value()) {
    ADD_FAILURE() << what << ": " << r.error().message;
    std::abort();
  }
  return std::move(*r);
}

inline void must(Status s, const char* what) {
  if (!s.has_value()) {
    ADD_FAILURE() << what << ": " << s.error().message;
    std::abort();
  }
}

}  // namespace vmem::conformance::test

#define MUST(expr) ::vmem::conformance::test::must((expr), #expr)
