#include "reference/mem/iothread.h"

VMEM_NAMESPACE_BEGIN

IoThread::IoThread(VirtioMemDevice& device) : device_(device) {
  device_.enable_threading();
  thread_ = std::thread([this] { run(); });
}

IoThread::~IoThread() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void IoThread::kick_and_wait() {
  std::unique_lock<std::mutex> l(mu_);
  const uint64_t mine = ++kicks_;
  cv_.notify_all();
  cv_.wait(l, [&] { return done_ >= mine || stop_; });
}

void IoThread::run() {
  for (;;) {
    uint64_t target = 0;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || kicks_ > done_; });
      if (stop_) return;
      target = kicks_;
    }
    {
      std::lock_guard<std::mutex> g(core_);
      device_.notify_queue(0);
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = target;
    }
    cv_.notify_all();
  }
}

VMEM_NAMESPACE_END
