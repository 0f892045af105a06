#include "cli/fuzz_engines.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "cli/campaign_io.h"

namespace vmem::cli {

namespace fs = std::filesystem;

namespace {

void print_progress(double t, const Stats& s, bool afl) {
  fmt::print("[{:>6.0f}s] execs {}  exec/s {}  {} {}  corpus {}  findings {}\n", t,
             grouped(s.execs), grouped(s.exec_per_s), afl ? "edges" : "cov", grouped(s.coverage),
             grouped(s.corpus), s.findings);
  std::fflush(stdout);
}

// The progress of the run so far, kept for the plot (OUT/progress.tsv).
class Timeline {
 public:
  explicit Timeline(const fs::path& p) : out_(p) {
    out_ << "# seconds\texecs\texec_per_s\tcoverage\tcorpus\tfindings\n";
  }
  void add(double t, const Stats& s) {
    out_ << fmt::format("{:.0f}\t{}\t{}\t{}\t{}\t{}\n", t, s.execs, s.exec_per_s, s.coverage,
                        s.corpus, s.findings);
    out_.flush();
    ++points_;
  }
  unsigned points() const { return points_; }

 private:
  std::ofstream out_;
  unsigned points_ = 0;
};

// libFuzzer's status lines: "#4096\tpulse  cov: 998 ft: 1851 corp: 109/3Kb exec/s: 2048 ..."
// in a plain run, "#123456: cov: 998 ft: 1851 corp: 109 exec/s 77458 ..." from the fork-mode
// parent (the inner processes' logs it dumps after a crash have the plain form, and are skipped).
class LibFuzzerLog {
 public:
  LibFuzzerLog(fs::path p, bool fork) : path_(std::move(p)), fork_(fork) {}
  // Reads what was appended since the last call.
  void update(Stats& s) {
    std::ifstream in(path_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t end = chunk.rfind('\n');
    if (end == std::string::npos) return;
    offset_ += end + 1;
    for (const std::string& line : lines_of(chunk.substr(0, end + 1)))
      parse(line, s);
  }

 private:
  void parse(const std::string& line, Stats& s) const {
    if (const auto v = number_after(line, "stat::number_of_executed_units: ")) s.execs = *v;
    if (line.rfind('#', 0) != 0) return;
    const auto n = number_after(line, "#");
    if (!n) return;
    const size_t after = line.find_first_not_of("0123456789", 1);
    const bool fork_line = after != std::string::npos && line[after] == ':';
    if (fork_line != fork_) return;
    s.execs = *n;
    if (const auto v = number_after(line, "cov: ")) s.coverage = *v;
    if (const auto v = number_after(line, "ft: ")) s.features = *v;
    if (const auto v = number_after(line, "corp: ")) s.corpus = *v;
    if (const auto v = number_after(line, fork_ ? "exec/s " : "exec/s: ")) s.exec_per_s = *v;
  }
  fs::path path_;
  bool fork_;
  size_t offset_ = 0;
};

}  // namespace

Result<EngineRun> libfuzzer_fuzz(const Campaign& c) {
  const bool fork = c.o.jobs > 1;
  Command cmd;
  cmd.argv = {c.engine.string(), fmt::format("-max_total_time={}", c.seconds),
              fmt::format("-timeout={}", c.o.input_timeout), "-print_final_stats=1",
              "-artifact_prefix=" + c.crashes.string() + "/"};
  if (fork) {
    // Keep going after a crash: every crash is saved under -artifact_prefix.
    cmd.argv.push_back(fmt::format("-fork={}", c.o.jobs));
    cmd.argv.push_back("-ignore_crashes=1");
  }
  if (!c.dict.empty()) cmd.argv.push_back("-dict=" + c.dict.string());
  cmd.argv.push_back(c.corpus.string());
  cmd.log = c.logs / "libfuzzer.log";
  fs::remove(cmd.log);
  fmt::print("$ {}\n", fmt::join(cmd.argv, " "));
  std::fflush(stdout);

  EngineRun run;
  LibFuzzerLog log(cmd.log, fork);
  Timeline timeline(c.out / "progress.tsv");
  const auto t0 = Clock::now();
  VMEM_ASSIGN_OR_RETURN(const pid_t pid, spawn(cmd));
  const auto tick = [&](double t) {
    log.update(run.stats);
    run.stats.findings = files_in(c.crashes).size();
    timeline.add(t, run.stats);
    print_progress(t, run.stats, false);
  };
  tick(0);
  // libFuzzer's fork mode needs a little while to wrap up its jobs: a margin of a minute, or a
  // tenth of the campaign.
  const double margin = std::max(60.0, c.seconds / 10.0);
  const Exit e =
      wait_all({pid}, c.seconds + margin, 1, static_cast<double>(c.o.status_interval), tick)
          .front();
  run.wall = since(t0);
  tick(run.wall);
  run.timed_out = e.timed_out;
  run.interrupted = e.interrupted;
  // A plain run stops at its first crash with status 1; anything else nonzero that left no
  // crash behind means the engine did not run.
  if (!fork && e.code != 0 && run.stats.findings > 0) {
    run.note =
        fmt::format("plain libFuzzer (--jobs 1) stops at its first crash: it ran {:.0f} s of {} s",
                    run.wall, c.seconds);
  }
  if (!e.timed_out && !e.interrupted && e.code != 0 && run.stats.findings == 0) {
    run.failure = fmt::format("{} ({}); the end of {}:\n{}", c.engine.string(), describe(e),
                              cmd.log.string(), last_lines(cmd.log, 15));
  }
  return run;
}

namespace {

// One instance's figures: the last line of plot_data (written every few seconds), or
// fuzzer_stats (written at exit and every minute), whichever is newer.
Stats afl_instance_stats(const fs::path& dir) {
  Stats s;
  std::map<std::string, std::string> kv;
  for (const std::string& line : lines_of(read_text(dir / "fuzzer_stats"))) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto trim = [](std::string x) {
      x.erase(0, x.find_first_not_of(' '));
      x.erase(x.find_last_not_of(' ') + 1);
      return x;
    };
    kv[trim(line.substr(0, colon))] = trim(line.substr(colon + 1));
  }
  const auto num = [&](const char* k) -> uint64_t {
    const auto it = kv.find(k);
    return it == kv.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
  };
  s.execs = num("execs_done");
  s.exec_per_s = num("execs_per_sec");
  s.coverage = num("edges_found");
  s.corpus = num("corpus_count");
  const std::vector<std::string> plot = lines_of(read_text(dir / "plot_data"));
  if (plot.size() >= 2 && plot.front().rfind('#', 0) == 0) {
    std::vector<std::string> names, values;
    std::istringstream h(plot.front().substr(1)), v(plot.back());
    for (std::string x; std::getline(h, x, ',');)
      names.push_back(x.substr(x.find_first_not_of(' ')));
    for (std::string x; std::getline(v, x, ',');)
      values.push_back(x);
    std::map<std::string, uint64_t> p;
    for (size_t i = 0; i < std::min(names.size(), values.size()); ++i)
      p[names[i]] = std::strtoull(values[i].c_str(), nullptr, 10);
    if (p["total_execs"] > s.execs) {
      s.execs = p["total_execs"];
      s.exec_per_s = p["execs_per_sec"];
      s.coverage = std::max(s.coverage, p["edges_found"]);
      s.corpus = std::max(s.corpus, p["corpus_count"]);
    }
  }
  s.findings = files_in(dir / "crashes").size();
  return s;
}

std::vector<fs::path> afl_instances(const fs::path& sync) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sync, ec)) {
    if (e.is_directory() && fs::exists(e.path() / "queue")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Execs and findings summed over the instances; coverage and corpus are the best instance's
// (the instances share their finds).
Stats afl_stats(const fs::path& sync) {
  Stats total;
  for (const fs::path& dir : afl_instances(sync)) {
    const Stats s = afl_instance_stats(dir);
    total.execs += s.execs;
    total.exec_per_s += s.exec_per_s;
    total.coverage = std::max(total.coverage, s.coverage);
    total.corpus = std::max(total.corpus, s.corpus);
    total.findings += s.findings;
  }
  return total;
}

// AFL++ 4.04c writes fuzzer_stats and plot_data only after its first minute, so a short campaign
// would show nothing: the instances also send their figures every second over StatsD
// (AFL_STATSD, dogstatsd tags naming the instance) to a UDP socket of ours.
class StatsdListener {
 public:
  StatsdListener() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~StatsdListener() {
    if (fd_ >= 0) close(fd_);
  }
  StatsdListener(const StatsdListener&) = delete;
  StatsdListener& operator=(const StatsdListener&) = delete;

  std::optional<uint16_t> port() const {
    return fd_ >= 0 ? std::optional<uint16_t>(port_) : std::nullopt;
  }

  // Reads every datagram waiting: "fuzzing.execs_done:57276|g|#banner:main,afl_version:++4.04c".
  void drain() {
    if (fd_ < 0) return;
    std::vector<char> buf(65536);
    for (;;) {
      const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      for (const std::string& line : lines_of(std::string(buf.data(), static_cast<size_t>(n)))) {
        if (line.rfind("fuzzing.", 0) != 0) continue;
        const size_t colon = line.find(':');
        const size_t bar = line.find('|');
        if (colon == std::string::npos || bar == std::string::npos || bar < colon) continue;
        const double v = std::strtod(line.substr(colon + 1, bar - colon - 1).c_str(), nullptr);
        std::string banner;
        if (const size_t b = line.find("#banner:"); b != std::string::npos)
          banner = line.substr(b + 8, line.find(',', b) - b - 8);
        if (std::isfinite(v)) by_instance_[banner][line.substr(8, colon - 8)] = v;
      }
    }
  }

  // Execs, exec/s and crashes summed over the instances; coverage and corpus the best one's.
  Stats total() const {
    Stats t;
    for (const auto& instance : by_instance_) {
      const auto& m = instance.second;  // clang 14 cannot capture a structured binding
      const auto get = [&](const char* k) {
        const auto it = m.find(k);
        return it == m.end() ? uint64_t{0} : static_cast<uint64_t>(it->second);
      };
      t.execs += get("execs_done");
      t.exec_per_s += get("execs_per_sec");
      t.coverage = std::max(t.coverage, get("edges_found"));
      t.corpus = std::max(t.corpus, get("corpus_count"));
      t.findings += get("saved_crashes");
    }
    return t;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::map<std::string, std::map<std::string, double>> by_instance_;
};

// AFL's file names ("id:000003,sig:06,src:000001,time:...") shortened for OUT/crashes/.
std::string afl_short_name(const std::string& instance, const std::string& name) {
  std::string id = name.substr(0, name.find(','));
  std::string sig;
  if (const size_t at = name.find("sig:"); at != std::string::npos) sig = name.substr(at, 6);
  std::string s = instance + "-" + id + (sig.empty() ? "" : "-" + sig);
  std::replace(s.begin(), s.end(), ':', '_');
  return s;
}

}  // namespace

Result<EngineRun> afl_fuzz(const Campaign& c) {
  const fs::path sync = c.out / "afl";
  const bool resume = fs::exists(sync);
  // A resumed AFL++ goes on counting from the execs its fuzzer_stats hold: this run's are the rest.
  const uint64_t execs_before = resume ? afl_stats(sync).execs : 0;
  std::vector<std::string> env = {"AFL_NO_UI=1", "AFL_NO_AFFINITY=1", "AFL_SKIP_CPUFREQ=1"};
  StatsdListener statsd;
  if (const auto port = statsd.port()) {
    env.push_back("AFL_STATSD=1");
    env.push_back(fmt::format("AFL_STATSD_PORT={}", *port));
    env.push_back("AFL_STATSD_TAGS_FLAVOR=dogstatsd");
  }
  // Only matters when cores go to a pipe (toolchain notes); this machine's core_pattern is "core".
  if (read_text("/proc/sys/kernel/core_pattern").rfind('|', 0) == 0)
    env.push_back("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1");
  std::vector<pid_t> pids;
  for (unsigned j = 0; j < c.o.jobs; ++j) {
    const std::string name = j == 0 ? "main" : fmt::format("s{}", j);
    Command cmd;
    cmd.argv = {"afl-fuzz",
                j == 0 ? "-M" : "-S",
                name,
                "-T",
                name,
                "-i",
                resume ? "-" : c.corpus.string(),
                "-o",
                sync.string(),
                "-V",
                std::to_string(c.seconds),
                "-t",
                std::to_string(c.o.input_timeout * 1000),
                "--",
                c.engine.string()};
    if (!c.dict.empty()) cmd.argv.insert(cmd.argv.end() - 2, {"-x", c.dict.string()});
    cmd.env = env;
    cmd.log = c.logs / fmt::format("afl-{}.log", name);
    fs::remove(cmd.log);
    fmt::print("$ {} {}\n", fmt::join(env, " "), fmt::join(cmd.argv, " "));
    auto pid = spawn(cmd);
    if (!pid.has_value()) {
      for (pid_t p : pids)
        kill(-p, SIGKILL);
      wait_all(pids, 10, 1);
      return unexpected(pid.error());
    }
    pids.push_back(*pid);
  }
  std::fflush(stdout);

  EngineRun run;
  Timeline timeline(c.out / "progress.tsv");
  const auto t0 = Clock::now();
  // The socket is drained every second; a line is printed every --status-interval.
  double next_line = 0;
  const auto tick = [&](double t) {
    statsd.drain();
    const Stats udp = statsd.total();
    const Stats files = afl_stats(sync);
    run.stats = udp.execs >= files.execs ? udp : files;
    run.stats.execs = run.stats.execs > execs_before ? run.stats.execs - execs_before : 0;
    run.stats.findings = std::max(udp.findings, files.findings);
    if (t < next_line) return;
    next_line += c.o.status_interval;
    timeline.add(t, run.stats);
    print_progress(t, run.stats, true);
  };
  tick(0);
  const double margin = std::max(60.0, c.seconds / 10.0);
  const std::vector<Exit> exits = wait_all(pids, c.seconds + margin, 1, 1.0, tick);
  run.wall = since(t0);
  next_line = 0;
  tick(run.wall);
  for (size_t j = 0; j < exits.size(); ++j) {
    const Exit& e = exits[j];
    run.timed_out = run.timed_out || e.timed_out;
    run.interrupted = run.interrupted || e.interrupted;
    if (!e.timed_out && !e.interrupted && e.code != 0 && run.failure.empty()) {
      const fs::path log = c.logs / (j == 0 ? "afl-main.log" : fmt::format("afl-s{}.log", j));
      run.failure = fmt::format("afl-fuzz ({}); the end of {}:\n{}", describe(e), log.string(),
                                last_lines(log, 15));
    }
  }
  // AFL exits 0 after finding crashes: they are in each instance's crashes/. Gather them, and
  // the queues (seeds included) as the campaign's corpus.
  fs::remove_all(c.corpus);
  fs::create_directories(c.corpus);
  for (const fs::path& dir : afl_instances(sync)) {
    const std::string inst = dir.filename().string();
    for (const fs::path& f : files_in(dir / "crashes"))
      fs::copy_file(f, c.crashes / afl_short_name(inst, f.filename().string()),
                    fs::copy_options::overwrite_existing);
    for (const fs::path& f : files_in(dir / "queue"))
      fs::copy_file(f, c.corpus / afl_short_name(inst, f.filename().string()),
                    fs::copy_options::overwrite_existing);
  }
  run.stats.findings = files_in(c.crashes).size();
  return run;
}

Command afl_tool(const Campaign& c, const char* tool, const fs::path& in, const fs::path& out,
                 const fs::path& log) {
  return {{tool, "-i", in.string(), "-o", out.string(), "-t",
           std::to_string(c.o.input_timeout * 1000), "--", c.engine.string()},
          {"AFL_SKIP_CPUFREQ=1", "AFL_NO_AFFINITY=1"},
          log};
}

}  // namespace vmem::cli
