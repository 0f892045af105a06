// A dedicated thread for the guest-request queue (decisions D12), as QEMU's iothreads serve
// virtqueues while the main loop runs the control plane.
//
// The guest side kicks and waits: kick_and_wait() returns once the iothread has processed the
// queue after the kick, which orders the guest's ring writes before the device's reads and the
// device's used-ring writes before the guest's reads. The device core (status, features, queue
// setup, resets, and migration save/load, which read the queue's indices) is serialized with
// queue processing by `core`, QEMU's big lock in miniature: with_core() runs the caller's
// function while the iothread is not processing. Everything else
// on the control plane (resize, busy window, listeners, checks, save) needs no core lock and
// runs while requests are processed, under the device's own finer rules.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "reference/mem/device.h"

VMEM_NAMESPACE_BEGIN

class IoThread {
 public:
  // Turns threading on in `device` and starts the thread.
  explicit IoThread(VirtioMemDevice& device);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  void kick_and_wait();

  template <class Fn>
  decltype(auto) with_core(Fn&& fn) {
    std::lock_guard<std::mutex> g(core_);
    return fn();
  }

 private:
  void run();

  VirtioMemDevice& device_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t kicks_ = 0;
  uint64_t done_ = 0;
  bool stop_ = false;
  std::mutex core_;
  std::thread thread_;
};

VMEM_NAMESPACE_END
