// "Kill the harness; its child must die with it", shared by the launcher's and the QEMU target's
// tests. The parent test re-runs its own binary with one DISABLED_ test (the holder) that starts
// a process, publishes its pid in a file named by an environment variable, and waits; the parent
// SIGKILLs that harness and checks the process is gone.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conformance/target/child_process.h"

extern char** environ;

namespace vmem::conformance::test {

inline bool gone_within(pid_t pid, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// The holder's side: publishes `pid` at `path` atomically (write, then rename).
inline void publish_pid(const char* path, pid_t pid) {
  {
    std::ofstream out(std::string(path) + ".tmp");
    out << pid << "\n";
  }
  std::rename((std::string(path) + ".tmp").c_str(), path);
}

// The parent's side: runs `holder` (a gtest filter naming a DISABLED_ test of this binary) with
// `env_var` set to a pid file, SIGKILLs that harness once the pid is published, and expects the
// process behind the pid to be gone within 3 s.
inline void expect_no_orphan(const std::string& env_var, const std::string& holder) {
  char dir_template[] = "/tmp/vmemcheck-orphan-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string pid_file = std::string(dir_template) + "/pid";
  const std::string env_entry = env_var + "=" + pid_file;
  // The killed harness cannot remove its child's private directory: put it where this test can.
  const std::string tmpdir_entry = std::string("TMPDIR=") + dir_template;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("TMPDIR=")) env.push_back(*e);
  }
  env.push_back(const_cast<char*>(env_entry.c_str()));
  env.push_back(const_cast<char*>(tmpdir_entry.c_str()));
  env.push_back(nullptr);
  std::string self = "/proc/self/exe";
  std::string filter = "--gtest_filter=" + holder;
  std::string disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  pid_t harness = -1;
  ASSERT_EQ(posix_spawn(&harness, self.c_str(), nullptr, nullptr, argv, env.data()), 0);

  pid_t held = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (held < 0 && std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(pid_file);
    if (!(in >> held)) {
      held = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_GT(held, 0) << "the harness did not report its process";
  EXPECT_TRUE(process_alive(held));
  kill(harness, SIGKILL);
  int status = 0;
  waitpid(harness, &status, 0);
  // PR_SET_PDEATHSIG kills the process with its parent; the reaper (init or a subreaper)
  // collects it.
  EXPECT_TRUE(gone_within(held, std::chrono::milliseconds(3000)));
  if (process_alive(held)) kill(held, SIGKILL);
  std::error_code ignored;
  std::filesystem::remove_all(dir_template, ignored);
}

}  // namespace vmem::conformance::test
