#include "cli/process_group.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

extern char** environ;

namespace vmem::cli {

namespace {

// Counted by the signal handler; read by wait_all.
volatile std::sig_atomic_t g_interrupts = 0;

void on_interrupt(int) {
  g_interrupts = g_interrupts + 1;
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_interrupts = 0;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

std::string describe(const Exit& e) {
  if (e.timed_out) return "stopped at its time limit";
  if (e.interrupted) return "interrupted";
  if (e.signal != 0) return fmt::format("killed by signal {}", e.signal);
  return fmt::format("exit status {}", e.code);
}

Result<pid_t> spawn(const Command& c) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string v(*e);
    const std::string name = v.substr(0, v.find('=') + 1);
    const bool replaced = std::any_of(c.env.begin(), c.env.end(),
                                      [&](const std::string& x) { return x.rfind(name, 0) == 0; });
    if (!replaced) env.push_back(v);
  }
  env.insert(env.end(), c.env.begin(), c.env.end());
  std::vector<char*> argv, envp;
  for (const std::string& a : c.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  for (const std::string& e : env)
    envp.push_back(const_cast<char*>(e.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, c.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return unexpected(Error{fmt::format("cannot run {}: {}", c.argv[0], strerror(rc))});
  return pid;
}

std::vector<Exit> wait_all(const std::vector<pid_t>& pids, double seconds, int interrupts_to_stop,
                           double interval, const std::function<void(double)>& tick) {
  std::vector<Exit> exits(pids.size());
  std::vector<bool> done(pids.size(), false);
  const auto t0 = std::chrono::steady_clock::now();
  double next_tick = interval;
  std::optional<double> stop_at;  // when SIGTERM was sent
  bool by_timeout = false;
  while (std::find(done.begin(), done.end(), false) != done.end()) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int st = 0;
      const pid_t r = waitpid(pids[i], &st, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      done[i] = true;
      if (r < 0) continue;
      if (WIFEXITED(st)) exits[i].code = WEXITSTATUS(st);
      if (WIFSIGNALED(st)) exits[i].signal = WTERMSIG(st);
      if (stop_at) (by_timeout ? exits[i].timed_out : exits[i].interrupted) = true;
    }
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (tick && interval > 0 && now >= next_tick) {
      tick(now);
      next_tick += interval;
    }
    if (!stop_at && (now > seconds || g_interrupts >= interrupts_to_stop)) {
      by_timeout = now > seconds;
      stop_at = now;
      for (size_t i = 0; i < pids.size(); ++i)
        kill(-pids[i], SIGTERM);
    }
    if (stop_at && now > *stop_at + 5) {
      for (size_t i = 0; i < pids.size(); ++i)
        kill(-pids[i], SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Anything the leaders left behind in their groups.
  for (pid_t p : pids)
    kill(-p, SIGKILL);
  return exits;
}

Result<Exit> run_bounded(const Command& c, double seconds) {
  VMEM_ASSIGN_OR_RETURN(const pid_t pid, spawn(c));
  return wait_all({pid}, seconds, 2).front();
}

}  // namespace vmem::cli
