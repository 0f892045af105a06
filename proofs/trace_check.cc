#include "proofs/trace_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "reference/mem/block_state.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {
namespace {

// The largest bitmap the check follows: 2^24 blocks (2 MiB of words).
constexpr uint64_t kMaxBlocks = uint64_t{1} << 24;

using State = rules::BlockState<U64>;
using Geometry = rules::Geometry<U64>;
using Host = rules::HostInput<U64>;

std::string response_token(uint64_t r) {
  return trace_word(to_string(static_cast<RespType>(r)));
}

std::string state_token(uint64_t s) {
  return "state=" + trace_word(to_string(static_cast<BlockState>(s)));
}

bool observed(const TraceOp& op, const std::string& token) {
  return std::find(op.expect.begin(), op.expect.end(), token) != op.expect.end();
}

// The observation tokens of `op` that name a response code, if any.
std::optional<std::string> observed_response(const TraceOp& op) {
  for (const char* t : {"ack", "nack", "busy", "error", "no_response"}) {
    if (observed(op, t)) return std::string(t);
  }
  return std::nullopt;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v)
    out += (out.empty() ? "" : " or ") + s;
  return out;
}

class Checker {
 public:
  explicit Checker(const Trace& t) : trace_(t) {}

  TraceCheck run() {
    // The relation is the fault-free machine's, whatever fault the trace was recorded under.
    DeviceOptions o = trace_.options;
    o.fault.clear();
    if (auto v = validate(o); !v.has_value()) {
      result_.error = "the trace's device: " + v.error().message;
      return result_;
    }
    const uint64_t blocks = o.region_size / o.block_size;
    if (blocks > kMaxBlocks) {
      result_.error = fmt::format("a region of {} blocks is more than the check follows ({})",
                                  blocks, kMaxBlocks);
      return result_;
    }
    g_ = {o.addr, o.region_size, o.block_size, o.usable_extent, o.profile};
    s_.words.assign((blocks + 63) / 64, 0);
    s_.plugged_size = 0;
    s_.requested_size = o.requested_size;
    // The device sizes its usable region at creation as at a system reset.
    s_.usable_region_size = rules::resized_usable_region(
        m_, o.region_size, o.block_size, o.usable_extent, o.requested_size, 0, true);

    for (const TraceOp& op : trace_.ops) {
      if (!step(op)) break;
    }
    return result_;
  }

 private:
  // Returns false when the check ends at `op`.
  bool step(const TraceOp& op) {
    if (op.verb == "request") return request(op);
    if (op.verb == "host") return host(op);
    if (op.verb == "config") return config(op);
    if (op.verb == "init") {
      // A virtio reset, then the driver's initialization: the blocks stay (DEV-13, DEV-14).
      (void)rules::device_reset(m_, g_, s_, calm());
      ++result_.explained;
      return true;
    }
    if (op.verb == "migrate" || op.verb == "migrate_corrupt") {
      // The destination carries the state over, or the device is untouched.
      ++result_.explained;
      return true;
    }
    if (op.verb == "load" || op.verb == "reg" || op.verb == "notify") {
      result_.stopped = fmt::format(
          "line {}: `{}` changes the device in ways the block-state relation does not follow; "
          "the steps before it were checked",
          op.line, op.verb);
      return false;
    }
    ++result_.passed_over;
    return true;
  }

  bool request(const TraceOp& op) {
    const std::string type = op.args.empty() ? "" : op.args[0];
    const uint64_t addr = number(op, "addr");
    const uint64_t nb = number(op, "nb");
    const std::optional<std::string> seen = observed_response(op);
    const bool plain = !op.kv.contains("shape") && !op.kv.contains("indirect");
    // A request in a malformed chain may get no answer at all; that is the virtqueue's business,
    // not the block state's.
    if (seen == "no_response" && !plain) {
      ++result_.passed_over;
      return true;
    }
    // Each allowed outcome: the response (and STATE's answer) with the state after it.
    struct Outcome {
      uint64_t response;
      uint64_t state;
      State after;
    };
    std::vector<Outcome> outcomes;
    const auto try_with = [&](const Host& host) {
      State after = s_;
      rules::StepResult<U64> r{VIRTIO_MEM_RESP_ERROR, 0};
      if (type == "plug") {
        r = rules::plug(m_, g_, after, addr, nb, host);
      } else if (type == "unplug") {
        r = rules::unplug(m_, g_, after, addr, nb, host);
      } else if (type == "unplug_all") {
        r = rules::unplug_all(m_, g_, after, host);
      } else if (type == "state") {
        r = rules::state(m_, g_, after, addr, nb);
      }
      outcomes.push_back({r.response, r.state, std::move(after)});
    };
    if (nb > 0xffff) return unexplained(op, "nb beyond 16 bits", "a 16-bit nb");
    if (refuse_next_ && type == "plug") {
      try_with(Host{busy_, false, true});
      // The refusal is used up by a PLUG that got as far as populating (and so answers BUSY
      // outside a busy window).
      refuse_next_ = !(outcomes.front().response == VIRTIO_MEM_RESP_BUSY && !busy_);
    } else {
      try_with(Host{busy_, true, true});
      // The host's part the trace cannot show: a refused populate, a failed discard.
      if (type == "plug") try_with(Host{busy_, false, true});
      if (type == "unplug" || type == "unplug_all") try_with(Host{busy_, true, false});
    }

    if (!seen) {  // nothing observed: follow the relation's first answer
      s_ = outcomes.front().after;
      ++result_.explained;
      return true;
    }
    std::vector<std::string> allowed;
    for (const Outcome& o : outcomes) {
      std::string want = response_token(o.response);
      const bool is_state = type == "state" && o.response == VIRTIO_MEM_RESP_ACK;
      if (is_state) want += " " + state_token(o.state);
      if (std::find(allowed.begin(), allowed.end(), want) == allowed.end()) allowed.push_back(want);
      if (*seen == response_token(o.response) &&
          (!is_state || observed(op, state_token(o.state)) || !has_state_token(op))) {
        s_ = o.after;
        ++result_.explained;
        return true;
      }
    }
    std::string got = *seen;
    for (const std::string& t : op.expect) {
      if (t.starts_with("state=")) got += " " + t;
    }
    return unexplained(op, got, joined(allowed));
  }

  bool host(const TraceOp& op) {
    const std::string action = op.args.empty() ? "" : op.args[0];
    if (action == "busy") {
      busy_ = op.args.size() == 2 && op.args[1] == "on";
    } else if (action == "refuse_populate") {
      refuse_next_ = true;
    } else if (action == "resize") {
      const uint64_t size = op.args.size() == 2 ? parse_trace_number(op.args[1]).value_or(0) : 0;
      State after = s_;
      const bool ok = rules::host_resize(m_, g_, after, size);
      const std::string want = ok ? "ok" : "error";
      if (op.has_expect && !observed(op, want)) {
        return unexplained(op, joined(op.expect), want);
      }
      s_ = std::move(after);
    } else if (action == "device_reset") {
      (void)rules::device_reset(m_, g_, s_, calm());
    } else if (action == "system_reset") {
      rules::system_reset(m_, g_, s_, Host{busy_, true, true});
    } else if (action == "wakeup") {
      rules::wakeup_reset(m_, g_, s_, Host{busy_, true, true});
    } else {
      return unexplained(op, "host " + action, "a host action of docs/trace-format.md");
    }
    ++result_.explained;
    return true;
  }

  bool config(const TraceOp& op) {
    const std::pair<const char*, uint64_t> fields[] = {
        {"plugged_size", s_.plugged_size},
        {"requested_size", s_.requested_size},
        {"usable_region_size", s_.usable_region_size},
    };
    for (const auto& [name, value] : fields) {
      const std::string prefix = std::string(name) + "=";
      for (const std::string& t : op.expect) {
        if (!t.starts_with(prefix)) continue;
        const auto seen = parse_trace_number(std::string_view(t).substr(prefix.size()));
        if (seen != value) return unexplained(op, t, fmt::format("{}{:#x}", prefix, value));
      }
    }
    ++result_.explained;
    return true;
  }

  static bool has_state_token(const TraceOp& op) {
    return std::any_of(op.expect.begin(), op.expect.end(),
                       [](const std::string& t) { return t.starts_with("state="); });
  }

  uint64_t number(const TraceOp& op, const char* key) const {
    const auto it = op.kv.find(key);
    return it == op.kv.end() ? 0 : parse_trace_number(it->second).value_or(0);
  }

  Host calm() const { return Host{busy_, true, true}; }

  bool unexplained(const TraceOp& op, std::string seen, std::string allowed) {
    std::string text = op.verb;
    for (const std::string& a : op.args)
      text += " " + a;
    for (const auto& [k, v] : op.kv)
      text += fmt::format(" {}={}", k, v);
    result_.unexplained =
        TraceCheck::Unexplained{op.line, text, std::move(seen), std::move(allowed)};
    return false;
  }

  const Trace& trace_;
  const U64 m_{};
  Geometry g_{};
  State s_;
  bool busy_ = false;
  bool refuse_next_ = false;
  TraceCheck result_;
};

}  // namespace

TraceCheck check_trace(const Trace& trace) {
  return Checker(trace).run();
}

}  // namespace proofs
VMEM_NAMESPACE_END
