// A lock guard that locks only when asked to: objects that can run single-threaded (fuzzers,
// benchmarks) or shared with an iothread pay for their mutex only in the second case.
#pragma once

#include <mutex>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

template <class Mutex>
class [[nodiscard]] CondLock {
 public:
  CondLock(Mutex& m, bool on) : m_(on ? &m : nullptr) {
    if (m_ != nullptr) m_->lock();
  }
  ~CondLock() {
    if (m_ != nullptr) m_->unlock();
  }
  CondLock(const CondLock&) = delete;
  CondLock& operator=(const CondLock&) = delete;

 private:
  Mutex* m_;
};

VMEM_NAMESPACE_END
