#include "cli/fuzz_campaign.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/process_group.h"
#include "reference/base/result.h"

namespace vmem::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

const char* const kTargets[] = {"migration_stream", "virtqueue", "transport", "ops",
                                "driver",           "qemu_diff"};

// ---------------------------------------------------------------------------------------------
// Small helpers

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// 1234567 -> "1,234,567", as the figures in docs/fuzzing.md are written.
std::string grouped(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::string last_lines(const fs::path& p, size_t n) {
  const std::vector<std::string> all = lines_of(read_text(p));
  const size_t from = all.size() > n ? all.size() - n : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i)
    out += "  " + all[i] + "\n";
  return out;
}

// Regular files directly in `dir`, sorted by name; AFL's README.txt is not an input.
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename() != "README.txt") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The number right after `label` in `line` (e.g. "cov: " in "... cov: 3021 ft: ..."), if any.
std::optional<uint64_t> number_after(const std::string& line, const std::string& label) {
  const size_t at = line.find(label);
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + label.size();
  if (i >= line.size() || !std::isdigit(static_cast<unsigned char>(line[i]))) return std::nullopt;
  uint64_t v = 0;
  for (; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i)
    v = v * 10 + static_cast<uint64_t>(line[i] - '0');
  return v;
}

// FNV-1a, for short stable names of crash signatures.
std::string short_hash(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s)
    h = (h ^ c) * 16777619u;
  return fmt::format("{:08x}", h);
}

// 90, 90s, 10m, 2h, 1h30m -> seconds.
Result<unsigned> parse_duration(const std::string& s) {
  const Error bad{fmt::format("bad --time '{}' (examples: 90, 90s, 10m, 1h30m)", s)};
  uint64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])))
      ++j;
    if (j == i || j - i > 9) return unexpected(bad);
    const uint64_t v = std::stoull(s.substr(i, j - i));
    uint64_t unit = 1;
    if (j < s.size()) {
      switch (s[j]) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        default:
          return unexpected(bad);
      }
      ++j;
    } else if (i != 0) {
      return unexpected(bad);  // "1h30": minutes or seconds?
    }
    total += v * unit;
    i = j;
  }
  if (total == 0 || total > 7 * 24 * 3600)
    return unexpected(Error{fmt::format("--time '{}' must be between 1 s and 7 days", s)});
  return static_cast<unsigned>(total);
}

std::optional<fs::path> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "");
  for (std::string dir; std::getline(in, dir, ':');) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Crash signatures

struct Signature {
  std::string key;       // what deduplicates: the oracle line or the kind and top frames
  std::string oracle;    // "<target> oracle: ..." as printed, if any
  std::string headline;  // the sanitizer's ERROR or runtime error line, if any
  bool reproduced = false;
};

// The oracle line with its numbers blanked, so the same broken oracle on other values is one
// crash.
std::string without_numbers(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (s[i] == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) i += 2;
      while (i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i])))
        ++i;
      out += 'N';
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The runtime's own frames, which every crash shares.
bool runtime_frame(const std::string& fn) {
  static const char* const prefixes[] = {"__sanitizer",
                                         "__asan",
                                         "__ubsan",
                                         "__interceptor",
                                         "__GI_",
                                         "__libc",
                                         "abort",
                                         "raise",
                                         "gsignal",
                                         "fuzzer::",
                                         "__pthread",
                                         "pthread_kill",
                                         "std::__terminate",
                                         "__cxa",
                                         "__assert",
                                         "_start",
                                         "main"};
  return std::any_of(std::begin(prefixes), std::end(prefixes),
                     [&](const char* p) { return fn.rfind(p, 0) == 0; });
}

// What a replay printed -> its signature: the oracle line if there is one, otherwise the
// sanitizer's kind and the first three frames of its first stack that are not the runtime's,
// otherwise how the process ended.
Signature signature_of(const std::string& log, const Exit& e) {
  Signature s;
  std::vector<std::string> frames;
  bool stack_done = false;
  for (const std::string& line : lines_of(log)) {
    const size_t oracle_at = line.find(" oracle: ");
    if (s.oracle.empty() && oracle_at != std::string::npos && oracle_at > 0 &&
        line.find(' ') == oracle_at) {
      s.oracle = line;
    }
    if (s.headline.empty()) {
      const size_t err = line.find("ERROR: ");
      const size_t ub = line.find("runtime error: ");
      if (ub != std::string::npos)
        s.headline = line.substr(ub);
      else if (err != std::string::npos &&
               line.find("libFuzzer: deadly signal") == std::string::npos)
        s.headline = line.substr(err + 7);
    }
    // "    #3 0x55d0c1 in vmem::Device::plug(...) /work/main/reference/mem/device.cc:120:7"
    const size_t hash = line.find_first_not_of(' ');
    if (hash == std::string::npos || line[hash] != '#' || stack_done) continue;
    const auto idx = number_after(line, "#");
    if (idx && *idx == 0 && !frames.empty()) {
      stack_done = true;
      continue;
    }
    const size_t in = line.find(" in ");
    if (in == std::string::npos) continue;
    std::string fn = line.substr(in + 4);
    fn = fn.substr(0, fn.find(" (BuildId: "));
    const size_t last = fn.rfind(' ');
    if (last != std::string::npos && (fn[last + 1] == '/' || fn.compare(last + 1, 2, "(/") == 0))
      fn = fn.substr(0, last);
    if (!runtime_frame(fn)) frames.push_back(fn);
  }
  // The kind: "AddressSanitizer: heap-buffer-overflow on address ..." -> up to " on ".
  std::string kind = s.headline.substr(0, s.headline.find(" on "));
  kind = kind.substr(0, kind.find(" at pc"));
  if (kind.rfind("runtime error: ", 0) == 0) kind = without_numbers(kind.substr(0, 60));
  s.reproduced = e.code != 0 || e.signal != 0;
  if (!s.oracle.empty()) {
    s.key = "oracle: " + without_numbers(s.oracle);
  } else if (!frames.empty()) {
    frames.resize(std::min<size_t>(frames.size(), 3));
    s.key = fmt::format("{}: {}", kind.empty() ? "crash" : kind, fmt::join(frames, " < "));
  } else if (e.timed_out) {
    s.key = "timeout (no stack)";
  } else if (e.signal != 0) {
    s.key = fmt::format("signal {}{}{}", e.signal, kind.empty() ? "" : ": ", kind);
  } else if (e.code != 0) {
    s.key = fmt::format("exit status {}{}{}", e.code, kind.empty() ? "" : ": ", kind);
  } else {
    s.key = "does not reproduce";
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The campaign

struct Stats {
  uint64_t execs = 0;
  uint64_t exec_per_s = 0;
  uint64_t coverage = 0;  // libFuzzer: cov (edges); AFL++: edges_found
  uint64_t features = 0;  // libFuzzer only
  uint64_t corpus = 0;
  uint64_t findings = 0;  // crash files so far
};

struct Campaign {
  FuzzOptions o;
  bool afl = false;
  unsigned seconds = 0;
  fs::path out, corpus, crashes, logs;
  fs::path engine;  // <target>_fuzzer or <target>_afl
  fs::path replay;  // <target>_replay of the same build, or the engine binary
  fs::path dict;    // empty: none
  uint64_t corpus_before = 0;
};

struct EngineRun {
  Stats stats;
  double wall = 0;
  bool timed_out = false;
  bool interrupted = false;
  std::string failure;  // the engine did not run as asked
  std::string note;     // how the engine ended, when it matters
};

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

struct Merged {
  std::string command;
  // The coverage of the merged corpus as the merge counted it: libFuzzer's edges and features,
  // afl-cmin's tuples (an edge and a bucket of its hit count).
  std::optional<uint64_t> edges, features, tuples;
};

// An AFL++ tool (afl-cmin, afl-tmin) from `in` to `out`, run on the campaign's engine binary.
Command afl_tool(const Campaign& c, const char* tool, const fs::path& in, const fs::path& out,
                 const fs::path& log) {
  return {{tool, "-i", in.string(), "-o", out.string(), "-t",
           std::to_string(c.o.input_timeout * 1000), "--", c.engine.string()},
          {"AFL_SKIP_CPUFREQ=1", "AFL_NO_AFFINITY=1"},
          log};
}

// Merge and minimize the corpus into OUT/corpus.min: libFuzzer's -merge=1, or afl-cmin.
Result<Merged> minimize_corpus(const Campaign& c) {
  const fs::path min = c.out / "corpus.min";
  fs::remove_all(min);
  Command cmd;
  cmd.log = c.logs / "merge.log";
  fs::remove(cmd.log);
  if (c.afl) {
    cmd = afl_tool(c, "afl-cmin", c.corpus, min, cmd.log);
    // afl-cmin refuses directories under /tmp unless told: the campaign owns its --out.
    cmd.env.push_back("AFL_ALLOW_TMP=1");
  } else {
    fs::create_directories(min);
    cmd.argv = {c.engine.string(), "-merge=1", fmt::format("-timeout={}", c.o.input_timeout),
                min.string(), c.corpus.string()};
  }
  VMEM_ASSIGN_OR_RETURN(const Exit e, run_bounded(cmd, std::max(120.0, c.seconds / 2.0)));
  if (e.code != 0) {
    return unexpected(
        Error{fmt::format("{} ({}); see {}", cmd.argv[0], describe(e), cmd.log.string())});
  }
  Merged m;
  m.command = fmt::format("{}", fmt::join(cmd.argv, " "));
  // "MERGE-OUTER: 457 new files with 18474 new features added; 3279 new coverage edges", or
  // afl-cmin's "Found 1234 unique tuples across 567 files."
  for (const std::string& line : lines_of(read_text(cmd.log))) {
    if (line.rfind("MERGE-OUTER: ", 0) == 0 &&
        line.find(" new coverage edges") != std::string::npos) {
      m.features = number_after(line, " files with ");
      m.edges = number_after(line, "added; ");
    }
    if (const size_t at = line.find("Found ");
        at != std::string::npos && line.find(" unique tuples") != std::string::npos)
      m.tuples = number_after(line.substr(at), "Found ");
  }
  return m;
}

// Replays one input and reads its signature. The engine binary is used for its sanitizer
// reports (libFuzzer builds have ASan+UBSan); UBSan is asked for a stack.
Result<Signature> replay(const Campaign& c, const fs::path& input, const fs::path& log) {
  fs::remove(log);
  Command cmd{{c.engine.string(), input.string()},
              {"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", "AFL_NO_UI=1"},
              log};
  if (!c.afl) cmd.argv.insert(cmd.argv.begin() + 1, "-runs=1");
  VMEM_ASSIGN_OR_RETURN(const Exit e, run_bounded(cmd, std::max(60u, 3 * c.o.input_timeout)));
  return signature_of(read_text(log), e);
}

struct UniqueCrash {
  std::string name;  // <target>-<hash of the key>
  Signature sig;
  std::vector<fs::path> files;
  fs::path minimized;
  std::string minimize_note;
  fs::path regression;
  std::string regression_note;
};

// Minimizes a crash within --minimize-time: libFuzzer's -minimize_crash=1, or afl-tmin. The
// result is kept only if it still crashes the same way.
void minimize_crash(const Campaign& c, UniqueCrash& u) {
  const fs::path dir = c.out / "crashes.min";
  fs::create_directories(dir);
  const fs::path raw = u.files.front();
  const fs::path min = dir / u.name;
  fs::remove(min);
  Command cmd;
  cmd.log = c.logs / fmt::format("minimize-{}.log", u.name);
  fs::remove(cmd.log);
  if (c.afl) {
    cmd = afl_tool(c, "afl-tmin", raw, min, cmd.log);
  } else {
    cmd.argv = {c.engine.string(),
                "-minimize_crash=1",
                fmt::format("-max_total_time={}", c.o.minimize_time),
                fmt::format("-timeout={}", c.o.input_timeout),
                "-exact_artifact_path=" + min.string(),
                raw.string()};
  }
  const auto e = run_bounded(cmd, c.o.minimize_time + 30.0);
  const uint64_t before = fs::file_size(raw);
  if (e.has_value() && fs::exists(min) && fs::file_size(min) > 0) {
    const auto again = replay(c, min, c.logs / fmt::format("replay-{}.min.log", u.name));
    if (again.has_value() && again->key == u.sig.key) {
      u.minimized = min;
      u.minimize_note = fmt::format("{} -> {} bytes", before, fs::file_size(min));
      return;
    }
    u.minimize_note = "the minimized input crashed differently; kept the original";
  } else {
    u.minimize_note = e.has_value() ? fmt::format("not minimized ({})", describe(*e))
                                    : "not minimized: " + e.error().message;
  }
  fs::copy_file(raw, min, fs::copy_options::overwrite_existing);
  u.minimized = min;
}

// OUT/regressions/NAME.trace for `ops` (the replay binary writes what the input did, with the
// model's answers as the expected observations, docs/trace-format.md), the raw input otherwise.
void make_regression(const Campaign& c, UniqueCrash& u) {
  const fs::path dir = c.out / "regressions";
  fs::create_directories(dir);
  if (c.o.target != "ops") {
    u.regression = dir / u.name;
    fs::copy_file(u.minimized, u.regression, fs::copy_options::overwrite_existing);
    u.regression_note = fmt::format(
        "raw input (the trace format does not describe {} inputs): keep it under "
        "corpus/regressions/{}/",
        c.o.target, c.o.target);
    return;
  }
  const fs::path trace = dir / (u.name + ".trace");
  fs::remove(trace);
  const Command cmd{{c.replay.string(), u.minimized.string()},
                    {"VMEM_FUZZ_TRACE=" + trace.string()},
                    c.logs / fmt::format("trace-{}.log", u.name)};
  const auto e = run_bounded(cmd, 120);
  if (!e.has_value() || !fs::exists(trace) || fs::file_size(trace) == 0) {
    u.regression = dir / u.name;
    fs::copy_file(u.minimized, u.regression, fs::copy_options::overwrite_existing);
    u.regression_note = "no trace was written; kept the raw input";
    return;
  }
  u.regression = trace;
  // Does it replay on the reference? A mismatch means the reference and the model disagree on it.
  const Command check{{"/proc/self/exe", "replay", trace.string()},
                      {},
                      c.logs / fmt::format("replay-trace-{}.log", u.name)};
  const auto r = run_bounded(check, 120);
  u.regression_note =
      fmt::format("trace written by {}; `vmemcheck replay` on it: {}", c.replay.filename().string(),
                  !r.has_value() ? r.error().message
                  : r->code == 0 ? std::string("replays cleanly")
                  : r->code == 1 ? std::string("mismatch (exit 1)")
                                 : describe(*r));
}

// Replays every crash file, smallest first, within a budget (a campaign with a shallow bug can
// leave thousands); the files past it are listed as not replayed.
std::vector<UniqueCrash> deduplicate(const Campaign& c, double budget,
                                     std::vector<fs::path>& unreplayed) {
  std::vector<UniqueCrash> uniques;
  const auto t0 = Clock::now();
  std::map<std::string, size_t> by_key;
  std::vector<fs::path> crashes = files_in(c.crashes);
  // Smallest first, so each group's first file is its smallest.
  std::stable_sort(crashes.begin(), crashes.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  for (const fs::path& f : crashes) {
    if (since(t0) > budget) {
      unreplayed.push_back(f);
      continue;
    }
    const auto sig = replay(c, f, c.logs / ("replay-" + f.filename().string() + ".log"));
    Signature s;
    if (sig.has_value())
      s = *sig;
    else
      s.key = "replay failed: " + sig.error().message;
    const auto [it, fresh] = by_key.emplace(s.key, uniques.size());
    if (fresh) {
      UniqueCrash u;
      u.name = fmt::format("{}-{}", c.o.target, short_hash(s.key));
      u.sig = s;
      uniques.push_back(std::move(u));
    }
    uniques[it->second].files.push_back(f);
  }
  return uniques;
}

// llvm-cov HTML from the coverage build's replay binary over the final corpus.
ordered_json coverage_report(const Campaign& c, const fs::path& corpus) {
  fs::path dir = c.o.coverage_build_dir;
  const std::string bin_name = c.o.target + "_replay";
  if (!fs::exists(dir / bin_name) && fs::exists(dir / "fuzz" / bin_name)) dir /= "fuzz";
  const fs::path bin = dir / bin_name;
  if (!fs::exists(bin)) {
    return {{"made", false},
            {"why", fmt::format("{} not found (cmake --preset coverage && cmake --build --preset "
                                "coverage --target {}; or --coverage-build-dir)",
                                bin.string(), bin_name)}};
  }
  const auto tool = [](const char* name) -> std::string {
    if (find_in_path(name)) return name;
    return std::string(name) + "-14";
  };
  const fs::path cov = c.out / "coverage";
  fs::remove_all(cov);
  fs::create_directories(cov / "raw");
  const fs::path log = c.logs / "coverage.log";
  fs::remove(log);
  const auto step = [&](std::vector<std::string> argv, std::vector<std::string> env = {}) {
    const auto e = run_bounded({std::move(argv), std::move(env), log}, 600);
    return e.has_value() && e->code == 0;
  };
  // The replay binary stops at an input that crashes; the corpus should have none.
  if (!step({bin.string(), corpus.string()},
            {"LLVM_PROFILE_FILE=" + (cov / "raw" / "replay-%p.profraw").string()})) {
    return {{"made", false}, {"why", "the coverage replay failed; see " + log.string()}};
  }
  std::vector<std::string> merge = {tool("llvm-profdata"), "merge", "-sparse", "-o",
                                    (cov / "replay.profdata").string()};
  for (const fs::path& f : files_in(cov / "raw"))
    merge.push_back(f.string());
  const std::string ignore = "-ignore-filename-regex=(^/usr/|/build/)";
  if (!step(merge) || !step({tool("llvm-cov"), "show", bin.string(),
                             "-instr-profile=" + (cov / "replay.profdata").string(), "-format=html",
                             "-output-dir=" + (cov / "html").string(), ignore})) {
    return {{"made", false}, {"why", "llvm-profdata or llvm-cov failed; see " + log.string()}};
  }
  // The TOTAL line of `llvm-cov report`: regions, missed, cover, functions, missed, executed,
  // lines, missed, cover, ...
  const fs::path report = cov / "report.txt";
  fs::remove(report);
  const auto r = run_bounded({{tool("llvm-cov"), "report", bin.string(),
                               "-instr-profile=" + (cov / "replay.profdata").string(), ignore},
                              {},
                              report},
                             600);
  ordered_json j = {
      {"made", true}, {"html", (cov / "html" / "index.html").string()}, {"binary", bin.string()}};
  for (const std::string& line : lines_of(read_text(report))) {
    if (line.rfind("TOTAL", 0) != 0) continue;
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string x; in >> x;)
      w.push_back(x);
    if (w.size() >= 10) {
      j["regions"] = w[3];
      j["functions"] = w[6];
      j["lines"] = w[9];
    }
  }
  (void)r;
  return j;
}

// OUT/progress.png: coverage and execs over the run, from OUT/progress.tsv.
ordered_json plot(const Campaign& c, unsigned points) {
  if (points < 2) return {{"made", false}, {"why", "fewer than two progress points"}};
  if (!find_in_path("gnuplot")) return {{"made", false}, {"why", "gnuplot is not installed"}};
  const fs::path script = c.out / "progress.gp";
  const fs::path png = c.out / "progress.png";
  std::ofstream(script) << fmt::format(
      "set terminal pngcairo size 900,500\n"
      "set output '{}'\n"
      "set title '{} ({}, {} job(s))'\n"
      "set xlabel 'seconds'\n"
      "set ylabel '{}'\n"
      "set y2label 'execs'\n"
      "set ytics nomirror\n"
      "set y2tics\n"
      "set key left top\n"
      "plot '{}' using 1:4 with lines lw 2 title 'coverage', '' using 1:2 axes x1y2 with lines "
      "title 'execs'\n",
      png.string(), c.o.target, c.o.engine, c.o.jobs,
      c.afl ? "edges found (AFL++)" : "coverage (libFuzzer cov:)",
      (c.out / "progress.tsv").string());
  fs::remove(png);
  const auto e = run_bounded({{"gnuplot", script.string()}, {}, c.logs / "gnuplot.log"}, 60);
  if (!e.has_value() || e->code != 0 || !fs::exists(png))
    return {{"made", false}, {"why", "gnuplot failed; see " + (c.logs / "gnuplot.log").string()}};
  return {{"made", true}, {"png", png.string()}};
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

void write_summary(const Campaign& c, const ordered_json& j) {
  std::ofstream(c.out / "summary.json") << j.dump(2) << "\n";
  std::ofstream md(c.out / "summary.md");
  const auto& run = j["run"];
  md << fmt::format("# Campaign: `{}` with {}\n\n", c.o.target, c.o.engine);
  md << fmt::format("{}; {} job(s), budget {} s{}.\n\n", j["date"].get<std::string>(), c.o.jobs,
                    c.seconds, j["resumed"].get<bool>() ? ", resumed" : "");
  md << "```\n" << j["command"].get<std::string>() << "\n```\n\n";
  if (!j["dictionary"].is_null())
    md << fmt::format("Dictionary: {}.\n\n", j["dictionary"].get<std::string>());
  md << "| | |\n|---|---|\n";
  md << fmt::format("| wall time | {:.0f} s{} |\n", run["wall_s"].get<double>(),
                    run["interrupted"].get<bool>() ? " (interrupted)"
                    : run["timed_out"].get<bool>() ? " (stopped at the time limit)"
                                                   : "");
  md << fmt::format("| execs | {} |\n", grouped(run["execs"].get<uint64_t>()));
  md << fmt::format("| exec/s (execs / wall time) | {} |\n",
                    grouped(run["exec_per_s"].get<uint64_t>()));
  md << fmt::format(
      "| coverage | {} {}{} |\n", grouped(run["coverage"].get<uint64_t>()),
      c.afl ? "edges (AFL++ edges_found)" : "edges (libFuzzer cov)",
      c.afl ? "" : fmt::format(", {} features", grouped(run["features"].get<uint64_t>())));
  const auto& corpus = j["corpus"];
  md << fmt::format("| corpus | {} before, {} after{}, {} after merging ({}) |\n",
                    corpus["before"].get<uint64_t>(), corpus["after"].get<uint64_t>(),
                    c.afl ? " (the instances' queues together)" : "",
                    corpus["minimized"].is_null() ? std::string("-")
                                                  : grouped(corpus["minimized"].get<uint64_t>()),
                    corpus["merge"].get<std::string>());
  if (!corpus["merged_edges"].is_null()) {
    md << fmt::format(
        "| coverage of the merged corpus | {} edges{} |\n",
        grouped(corpus["merged_edges"].get<uint64_t>()),
        corpus["merged_features"].is_null()
            ? std::string()
            : fmt::format(", {} features", grouped(corpus["merged_features"].get<uint64_t>())));
  }
  if (!corpus["merged_tuples"].is_null()) {
    md << fmt::format(
        "| coverage of the merged corpus | {} tuples (afl-cmin: edge x hit-count bucket) |\n",
        grouped(corpus["merged_tuples"].get<uint64_t>()));
  }
  md << fmt::format("| crash files | {}{} |\n", j["crash_files"].get<uint64_t>(),
                    j["crash_files_not_replayed"].get<uint64_t>() == 0
                        ? std::string()
                        : fmt::format(" ({} not replayed: past the deduplication budget)",
                                      j["crash_files_not_replayed"].get<uint64_t>()));
  md << fmt::format("| unique crashes | {} |\n\n", j["unique_crashes"].size());
  if (!j["engine_note"].get<std::string>().empty())
    md << "Note: " << j["engine_note"].get<std::string>() << ".\n\n";
  if (!j["engine_failure"].get<std::string>().empty())
    md << "**The engine failed:**\n\n```\n" << j["engine_failure"].get<std::string>() << "```\n\n";
  for (const auto& u : j["unique_crashes"]) {
    md << fmt::format("## {}\n\n", u["name"].get<std::string>());
    md << fmt::format("- signature: `{}`\n", u["key"].get<std::string>());
    if (!u["oracle"].get<std::string>().empty())
      md << fmt::format("- oracle line: `{}`\n", u["oracle"].get<std::string>());
    if (!u["headline"].get<std::string>().empty())
      md << fmt::format("- report: `{}`\n", u["headline"].get<std::string>());
    std::vector<std::string> files = u["files"].get<std::vector<std::string>>();
    const size_t more = files.size() > 5 ? files.size() - 5 : 0;
    files.resize(files.size() - more);
    md << fmt::format("- files ({}): {}{}\n", u["files"].size(), fmt::join(files, ", "),
                      more ? fmt::format(" and {} more (summary.json)", more) : std::string());
    md << fmt::format("- minimized: {} ({})\n", u["minimized"].get<std::string>(),
                      u["minimize"].get<std::string>());
    md << fmt::format("- regression: {} ({})\n\n", u["regression"].get<std::string>(),
                      u["regression_note"].get<std::string>());
  }
  const auto& cov = j["coverage_report"];
  if (cov["made"].get<bool>()) {
    md << fmt::format("Coverage report: {} (lines {}, functions {}, regions {}).\n",
                      cov["html"].get<std::string>(), cov.value("lines", "?"),
                      cov.value("functions", "?"), cov.value("regions", "?"));
  } else {
    md << fmt::format("Coverage report: not made: {}.\n", cov["why"].get<std::string>());
  }
  const auto& p = j["plot"];
  md << (p["made"].get<bool>() ? fmt::format("Plot: {}.\n", p["png"].get<std::string>())
                               : fmt::format("Plot: not made: {}.\n", p["why"].get<std::string>()));
}

// Where an engine binary is: DIR/NAME or DIR/fuzz/NAME.
fs::path binary_in(const fs::path& dir, const std::string& name) {
  if (!fs::exists(dir / name) && fs::exists(dir / "fuzz" / name)) return dir / "fuzz" / name;
  return dir / name;
}

Result<Campaign> prepare(const FuzzOptions& o) {
  Campaign c;
  c.o = o;
  if (std::find(std::begin(kTargets), std::end(kTargets), o.target) == std::end(kTargets)) {
    return unexpected(
        Error{fmt::format("unknown --target '{}' ({})", o.target, fmt::join(kTargets, ", "))});
  }
  if (o.engine != "libfuzzer" && o.engine != "afl")
    return unexpected(Error{fmt::format("unknown --engine '{}' (libfuzzer, afl)", o.engine)});
  c.afl = o.engine == "afl";
  if (o.jobs < 1 || o.jobs > 64) return unexpected(Error{"--jobs must be between 1 and 64"});
  if (o.status_interval < 1) return unexpected(Error{"--status-interval must be at least 1 s"});
  VMEM_ASSIGN_OR_RETURN(c.seconds, parse_duration(o.time));

  const std::string preset = c.afl ? "afl" : "fuzz";
  const std::string engine_name = o.target + (c.afl ? "_afl" : "_fuzzer");
  const fs::path dir =
      o.build_dir.empty() ? fs::path("build") / preset / "fuzz" : fs::path(o.build_dir);
  c.engine = binary_in(dir, engine_name);
  if (access(c.engine.c_str(), X_OK) != 0) {
    return unexpected(Error{fmt::format(
        "{} not found: build it with `cmake --preset {} && cmake --build --preset {} --target {}` "
        "(or pass --build-dir)",
        c.engine.string(), preset, preset, engine_name)});
  }
  c.engine = fs::absolute(c.engine);
  c.replay = binary_in(dir, o.target + "_replay");
  c.replay = access(c.replay.c_str(), X_OK) == 0 ? fs::absolute(c.replay) : c.engine;
  if (c.afl) {
    for (const char* tool : {"afl-fuzz", "afl-cmin", "afl-tmin"}) {
      if (!find_in_path(tool))
        return unexpected(Error{fmt::format("{} not found (apt-get install afl++)", tool)});
    }
  }

  if (!o.dict.empty()) {
    if (!fs::is_regular_file(o.dict))
      return unexpected(Error{fmt::format("--dict {}: no such file", o.dict)});
    c.dict = fs::absolute(o.dict);
  } else if (const fs::path d = fs::path("corpus/dictionaries") / (o.target + ".dict");
             fs::is_regular_file(d)) {
    c.dict = fs::absolute(d);
  }

  c.out = fs::absolute(o.out.empty() ? fs::path("build") / "campaigns" / (o.target + "-" + o.engine)
                                     : fs::path(o.out));
  c.corpus = c.out / "corpus";
  c.crashes = c.out / "crashes";
  c.logs = c.out / "logs";
  if (o.resume) {
    if (!fs::is_directory(c.corpus))
      return unexpected(Error{fmt::format("--resume: {} holds no campaign", c.out.string())});
    if (c.afl && !fs::exists(c.out / "afl"))
      return unexpected(Error{fmt::format("--resume: {} holds no AFL++ campaign", c.out.string())});
  } else {
    if (fs::exists(c.corpus)) {
      return unexpected(Error{fmt::format(
          "{} already holds a campaign: pass --resume to go on with it, or another --out",
          c.out.string())});
    }
    const fs::path seeds = o.seeds.empty() ? fs::path("corpus") / o.target : fs::path(o.seeds);
    if (files_in(seeds).empty()) {
      return unexpected(Error{fmt::format(
          "no seeds in {} (run from the repository root, or pass --seeds)", seeds.string())});
    }
    // The engines write into their corpus: never the repository's, always a copy.
    fs::create_directories(c.corpus);
    for (const fs::path& f : files_in(seeds))
      fs::copy_file(f, c.corpus / f.filename());
  }
  fs::create_directories(c.crashes);
  fs::create_directories(c.logs);
  c.corpus_before = files_in(c.corpus).size();
  return c;
}

}  // namespace

int run_fuzz(const FuzzOptions& o) {
  auto prepared = prepare(o);
  if (!prepared.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", prepared.error().message);
    return 2;
  }
  const Campaign& c = *prepared;
  const InterruptGuard guard;
  std::string command = fmt::format("vmemcheck fuzz --target {} --engine {} --time {} --jobs {}",
                                    o.target, o.engine, o.time, o.jobs);
  if (!o.build_dir.empty()) command += " --build-dir " + o.build_dir;
  if (o.coverage_build_dir != FuzzOptions{}.coverage_build_dir)
    command += " --coverage-build-dir " + o.coverage_build_dir;
  if (!o.seeds.empty()) command += " --seeds " + o.seeds;
  if (!o.dict.empty()) command += " --dict " + o.dict;
  command += " --out " + c.out.string();
  if (o.resume) command += " --resume";
  fmt::print("campaign: {} with {} for {} s on {} job(s); seeds: {} inputs; out: {}\n", o.target,
             o.engine, c.seconds, o.jobs, c.corpus_before, c.out.string());
  std::fflush(stdout);

  auto engine_run = c.afl ? afl_fuzz(c) : libfuzzer_fuzz(c);
  if (!engine_run.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", engine_run.error().message);
    return 2;
  }
  EngineRun& run = *engine_run;
  if (!run.failure.empty()) fmt::print(stderr, "vmemcheck: the engine failed: {}\n", run.failure);
  if (run.interrupted) fmt::print("interrupted: the engines are stopped; wrapping up\n");
  const uint64_t corpus_after = files_in(c.corpus).size();

  fmt::print("merging the corpus into {}/corpus.min\n", c.out.string());
  std::fflush(stdout);
  const auto merged = minimize_corpus(c);
  const std::string merge_note = merged.has_value() ? merged->command : merged.error().message;
  const bool have_min = merged.has_value();

  std::vector<fs::path> unreplayed;
  std::vector<UniqueCrash> uniques = deduplicate(c, std::max(300.0, c.seconds / 4.0), unreplayed);
  for (UniqueCrash& u : uniques) {
    if (!u.sig.reproduced) {
      u.minimized = u.files.front();
      u.minimize_note = "does not reproduce: not minimized";
      u.regression_note = "none (does not reproduce)";
      continue;
    }
    fmt::print("crash {}: {} ({} file(s)); minimizing\n", u.name, u.sig.key, u.files.size());
    std::fflush(stdout);
    minimize_crash(c, u);
    make_regression(c, u);
  }
  const ordered_json cov = coverage_report(c, have_min ? c.out / "corpus.min" : c.corpus);
  std::ifstream tsv(c.out / "progress.tsv");
  unsigned points = 0;
  for (std::string line; std::getline(tsv, line);)
    points += line.rfind('#', 0) != 0;
  const ordered_json png = plot(c, points);

  const double wall = std::max(run.wall, 1e-3);
  ordered_json crashes_j = ordered_json::array();
  for (const UniqueCrash& u : uniques) {
    std::vector<std::string> files;
    for (const fs::path& f : u.files)
      files.push_back(f.string());
    crashes_j.push_back({{"name", u.name},
                         {"key", u.sig.key},
                         {"oracle", u.sig.oracle},
                         {"headline", u.sig.headline},
                         {"reproduced", u.sig.reproduced},
                         {"files", files},
                         {"minimized", u.minimized.string()},
                         {"minimize", u.minimize_note},
                         {"regression", u.regression.string()},
                         {"regression_note", u.regression_note}});
  }
  const ordered_json summary = {
      {"target", o.target},
      {"engine", o.engine},
      {"jobs", o.jobs},
      {"date", today()},
      {"command", command},
      {"engine_binary", c.engine.string()},
      {"dictionary", c.dict.empty() ? ordered_json() : ordered_json(c.dict.string())},
      {"resumed", o.resume},
      {"time_budget_s", c.seconds},
      {"run",
       {{"wall_s", run.wall},
        {"timed_out", run.timed_out},
        {"interrupted", run.interrupted},
        {"execs", run.stats.execs},
        {"exec_per_s", static_cast<uint64_t>(static_cast<double>(run.stats.execs) / wall)},
        {"engine_exec_per_s", run.stats.exec_per_s},
        {"coverage", run.stats.coverage},
        {"features", run.stats.features}}},
      {"corpus",
       {{"before", c.corpus_before},
        {"after", corpus_after},
        {"minimized",
         have_min ? ordered_json(files_in(c.out / "corpus.min").size()) : ordered_json()},
        {"merge", merge_note},
        {"merged_edges", have_min && merged->edges ? ordered_json(*merged->edges) : ordered_json()},
        {"merged_features",
         have_min && merged->features ? ordered_json(*merged->features) : ordered_json()},
        {"merged_tuples",
         have_min && merged->tuples ? ordered_json(*merged->tuples) : ordered_json()}}},
      {"crash_files", files_in(c.crashes).size()},
      {"crash_files_not_replayed", unreplayed.size()},
      {"unique_crashes", crashes_j},
      {"regressions", o.target == "ops"
                          ? "traces (docs/trace-format.md) written by the replay binary"
                          : "the minimized raw inputs (the trace format describes ops only)"},
      {"engine_failure", run.failure},
      {"engine_note", run.note},
      {"coverage_report", cov},
      {"plot", png}};
  write_summary(c, summary);

  fmt::print(
      "\n{}: {} execs in {:.0f} s ({} exec/s), coverage {}, corpus {} -> {}{}, {} crash "
      "file(s), {} unique\n",
      o.target, grouped(run.stats.execs), run.wall,
      grouped(summary["run"]["exec_per_s"].get<uint64_t>()), grouped(run.stats.coverage),
      c.corpus_before, corpus_after,
      have_min ? fmt::format(" (merged: {})", summary["corpus"]["minimized"].get<uint64_t>())
               : std::string(),
      summary["crash_files"].get<uint64_t>(), uniques.size());
  for (const UniqueCrash& u : uniques)
    fmt::print("  {}: {}\n", u.name, u.sig.key);
  fmt::print("written: {}/summary.md, {}/summary.json\n", c.out.string(), c.out.string());
  if (!run.failure.empty()) return 2;
  return uniques.empty() ? 0 : 1;
}

}  // namespace vmem::cli
