// Bounded child processes for the commands that drive other programs (`vmemcheck fuzz`, the fuzz
// part of `vmemcheck-mutants mutate`): every child leads its own process group, so a time limit
// or Ctrl-C stops it and whatever it forked (libFuzzer's fork-mode workers, AFL's forkserver):
// SIGTERM first, SIGKILL 5 s later. Every wait has a bound.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "reference/base/result.h"

namespace vmem::cli {

// While alive, SIGINT and SIGTERM are counted instead of ending the program: the first one stops
// the engines of a campaign, a second one the step under way (wait_all's interrupts_to_stop).
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct Command {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=VALUE, over the inherited environment
  std::filesystem::path log;     // stdout and stderr, appended
};

struct Exit {
  int code = -1;   // exit status, when it exited
  int signal = 0;  // the signal that ended it
  bool timed_out = false;
  bool interrupted = false;
};

std::string describe(const Exit& e);

// Starts `c` in a process group of its own (stdin from /dev/null).
Result<pid_t> spawn(const Command& c);

// Waits for every process of `pids` (each leading its own group) for at most `seconds`, calling
// `tick` every `interval` seconds. At the deadline, or once SIGINT/SIGTERM arrived
// `interrupts_to_stop` times under an InterruptGuard, every group gets SIGTERM, and SIGKILL 5 s
// later; whatever the leaders left in their groups is killed at the end.
std::vector<Exit> wait_all(const std::vector<pid_t>& pids, double seconds, int interrupts_to_stop,
                           double interval = 0, const std::function<void(double)>& tick = {});

// One bounded command; a second Ctrl-C stops it (the first one only stops the engines).
Result<Exit> run_bounded(const Command& c, double seconds);

}  // namespace vmem::cli
