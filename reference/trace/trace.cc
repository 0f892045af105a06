#include "reference/trace/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>
#include <sstream>

#include "reference/check/consumer_set.h"
#include "reference/mem/machine.h"
#include "reference/mem/request_driver.h"
#include "reference/transport/virtio_mmio.h"
#include "reference/transport/virtio_pci.h"

VMEM_NAMESPACE_BEGIN

namespace {

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
      ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t')
      ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::string trace_word(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string format_request(uint16_t type, uint64_t addr, uint16_t nb_blocks) {
  const std::string name =
      type <= VIRTIO_MEM_REQ_STATE ? request_type_name(type) : std::to_string(type);
  return fmt::format("request {} addr={:#x} nb={}", name, addr, nb_blocks);
}

std::string format_answer(uint16_t request_type, uint16_t resp, uint16_t state) {
  if (resp > VIRTIO_MEM_RESP_ERROR) return std::to_string(resp);
  std::string out = trace_word(to_string(static_cast<RespType>(resp)));
  if (request_type == VIRTIO_MEM_REQ_STATE && resp == VIRTIO_MEM_RESP_ACK &&
      state <= VIRTIO_MEM_STATE_MIXED) {
    out += " state=" + trace_word(to_string(static_cast<BlockState>(state)));
  }
  return out;
}

std::optional<uint64_t> parse_trace_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace {

std::optional<std::vector<uint8_t>> parse_hex(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [p, ec] = std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, out[i], 16);
    if (ec != std::errc() || p != s.data() + 2 * i + 2) return std::nullopt;
  }
  return out;
}

std::string to_hex(std::span<const uint8_t> b) {
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t x : b)
    s += fmt::format("{:02x}", x);
  return s;
}

Error at(int line, std::string_view what) {
  return Error{fmt::format("line {}: {}", line, what)};
}

// Splits "a=b" into key and value; words without '=' are positional.
bool is_kv(const std::string& w) {
  return w.find('=') != std::string::npos;
}

const char* tristate_name(Tristate t) {
  switch (t) {
    case Tristate::Auto:
      return "auto";
    case Tristate::On:
      return "on";
    case Tristate::Off:
      return "off";
  }
  return "?";
}

std::optional<Tristate> tristate_from(std::string_view s) {
  if (s == "auto") return Tristate::Auto;
  if (s == "on") return Tristate::On;
  if (s == "off") return Tristate::Off;
  return std::nullopt;
}

Status parse_device(const TraceOp& op, Trace& t) {
  for (const auto& entry : op.kv) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const std::string& k = entry.first;
    const std::string& v = entry.second;
    auto num = parse_trace_number(v);
    auto need_num = [&]() -> Result<uint64_t> {
      if (!num) return unexpected(at(op.line, fmt::format("'{}' needs a number, got '{}'", k, v)));
      return *num;
    };
    DeviceOptions& o = t.options;
    if (k == "profile") {
      auto p = profile_from_name(v);
      if (!p) return unexpected(at(op.line, fmt::format("unknown profile '{}'", v)));
      o.profile = *p;
    } else if (k == "addr" || k == "region_size" || k == "block_size" || k == "requested_size" ||
               k == "extent") {
      auto n = need_num();
      if (!n.has_value()) return unexpected(n.error());
      (k == "addr"             ? o.addr
       : k == "region_size"    ? o.region_size
       : k == "block_size"     ? o.block_size
       : k == "requested_size" ? o.requested_size
                               : o.usable_extent) = *n;
    } else if (k == "node" || k == "queue_size") {
      auto n = need_num();
      if (!n.has_value() || *n > 0xffff)
        return unexpected(at(op.line, fmt::format("bad {} '{}'", k, v)));
      (k == "node" ? o.node_id : o.queue_size) = static_cast<uint16_t>(*n);
    } else if (k == "acpi_pxm" || k == "indirect" || k == "event_idx" || k == "memslots") {
      if (v != "0" && v != "1")
        return unexpected(at(op.line, fmt::format("'{}' must be 0 or 1", k)));
      (k == "acpi_pxm"   ? o.acpi_pxm
       : k == "indirect" ? o.indirect_desc
       : k == "memslots" ? o.dynamic_memslots
                         : o.event_idx) = v == "1";
    } else if (k == "ui" || k == "ps") {
      auto tri = tristate_from(v);
      if (!tri) return unexpected(at(op.line, fmt::format("'{}' must be auto, on or off", k)));
      (k == "ui" ? o.unplugged_inaccessible : o.persistent_suspend) = *tri;
    } else if (k == "backing") {
      auto b = backing_from_name(v);
      if (!b) return unexpected(at(op.line, fmt::format("unknown backing '{}'", v)));
      t.backing = *b;
    } else if (k == "transport") {
      if (v != "none" && v != "pci" && v != "mmio") {
        return unexpected(at(op.line, fmt::format("unknown transport '{}'", v)));
      }
      t.transport = v;
    } else if (k == "fault") {
      o.fault = v;
    } else {
      return unexpected(at(op.line, fmt::format("unknown device option '{}'", k)));
    }
  }
  return ok();
}

}  // namespace

Result<Trace> parse_trace(std::string_view text) {
  Trace t;
  bool seen_version = false;
  bool seen_device = false;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto words = split_words(line);
    if (words.empty() || words[0][0] == '#') {
      if (eol == text.size()) break;
      continue;
    }
    if (!seen_version) {
      if (words.size() != 2 || words[0] != "vmemtrace") {
        return unexpected(at(line_no, "a trace starts with 'vmemtrace <version>'"));
      }
      if (words[1] != std::to_string(kTraceVersion)) {
        return unexpected(at(line_no, fmt::format("trace version {} is not the supported {}",
                                                  words[1], kTraceVersion)));
      }
      seen_version = true;
      continue;
    }
    TraceOp op;
    op.line = line_no;
    op.verb = words[0];
    bool after_arrow = false;
    for (std::size_t i = 1; i < words.size(); ++i) {
      if (words[i] == "->") {
        if (after_arrow) return unexpected(at(line_no, "two '->' on one line"));
        after_arrow = true;
        op.has_expect = true;
        continue;
      }
      if (after_arrow) {
        op.expect.push_back(words[i]);
      } else if (is_kv(words[i])) {
        const auto eq = words[i].find('=');
        if (!op.kv.emplace(words[i].substr(0, eq), words[i].substr(eq + 1)).second) {
          return unexpected(at(line_no, fmt::format("'{}' given twice", words[i].substr(0, eq))));
        }
      } else {
        op.args.push_back(words[i]);
      }
    }
    if (op.verb == "device") {
      if (seen_device) return unexpected(at(line_no, "a second 'device' line"));
      if (!t.ops.empty())
        return unexpected(at(line_no, "'device' must come before every operation"));
      VMEM_TRY(parse_device(op, t));
      seen_device = true;
    } else {
      t.ops.push_back(std::move(op));
    }
    if (eol == text.size()) break;
  }
  if (!seen_version) return unexpected(Error{"empty trace: no 'vmemtrace' line"});
  return t;
}

std::string format_device_line(const DeviceOptions& o, BackingKind backing,
                               const std::string& transport) {
  std::string s = fmt::format(
      "device profile={} addr={:#x} region_size={:#x} block_size={:#x} requested_size={:#x} "
      "extent={:#x} node={} acpi_pxm={} ui={} ps={} indirect={} event_idx={} queue_size={} "
      "backing={} transport={}",
      profile_name(o.profile), o.addr, o.region_size, o.block_size, o.requested_size,
      o.usable_extent, o.node_id, o.acpi_pxm ? 1 : 0, tristate_name(o.unplugged_inaccessible),
      tristate_name(o.persistent_suspend), o.indirect_desc ? 1 : 0, o.event_idx ? 1 : 0,
      o.queue_size, to_string(backing), transport);
  if (o.dynamic_memslots) s += " memslots=1";
  if (!o.fault.empty() && o.fault != "none") s += " fault=" + o.fault;
  return s;
}

std::string format_trace(const Trace& t) {
  std::string out = fmt::format("vmemtrace {}\n{}\n", kTraceVersion,
                                format_device_line(t.options, t.backing, t.transport));
  for (const TraceOp& op : t.ops) {
    out += op.verb;
    for (const auto& a : op.args)
      out += " " + a;
    for (const auto& [k, v] : op.kv)
      out.append(" ").append(k).append("=").append(v);
    if (op.has_expect) {
      out += " ->";
      for (const auto& e : op.expect)
        out += " " + e;
    }
    out += "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Replay.

namespace {

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const Trace& t, const DeviceOptions& o) {
    auto s = std::unique_ptr<Session>(new Session());
    s->trace_ = &t;
    s->options_ = o;
    VMEM_TRY(s->build());
    return s;
  }

  // Runs one operation; returns the observation tokens, or an error if it cannot run.
  Result<std::vector<std::string>> run(const TraceOp& op);

 private:
  Status build() {
    auto m = Machine::create(options_, trace_->backing);
    if (!m.has_value()) return unexpected(m.error());
    machine_ = std::move(*m);
    driver_ = std::make_unique<RequestDriver>(*machine_->device, kQueueBase);
    pci_.reset();
    mmio_.reset();
    if (trace_->transport == "pci") pci_ = std::make_unique<VirtioPciTransport>(*machine_->device);
    if (trace_->transport == "mmio")
      mmio_ = std::make_unique<VirtioMmioTransport>(*machine_->device);
    return ok();
  }

  Result<std::vector<std::string>> request(const TraceOp& op);
  Result<std::vector<std::string>> host(const TraceOp& op);
  Result<std::vector<std::string>> reg(const TraceOp& op);
  Result<std::vector<std::string>> migrate();
  Result<std::vector<std::string>> migrate_corrupt(const TraceOp& op);
  Result<std::vector<std::string>> consumers(const TraceOp& op);
  Result<std::vector<std::string>> listener(const TraceOp& op);
  Result<std::vector<std::string>> vfio(const TraceOp& op);
  Result<std::vector<std::string>> check();

  static constexpr uint64_t kQueueBase = 1ULL << 20;
  const Trace* trace_ = nullptr;
  DeviceOptions options_;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<RequestDriver> driver_;
  std::unique_ptr<VirtioPciTransport> pci_;
  std::unique_ptr<VirtioMmioTransport> mmio_;
  std::unique_ptr<ConsumerSet> consumers_;  // after a `consumers` line
};

Result<uint64_t> number(const TraceOp& op, const std::string& text, std::string_view what) {
  auto v = parse_trace_number(text);
  if (!v) return unexpected(at(op.line, fmt::format("{} '{}' is not a number", what, text)));
  return *v;
}

Result<uint64_t> kv_number(const TraceOp& op, const char* key, uint64_t fallback) {
  auto it = op.kv.find(key);
  if (it == op.kv.end()) return fallback;
  return number(op, it->second, key);
}

Result<std::vector<uint32_t>> sizes(const TraceOp& op, std::string_view list) {
  std::vector<uint32_t> out;
  std::size_t i = 0;
  while (i < list.size()) {
    std::size_t j = list.find(',', i);
    if (j == std::string_view::npos) j = list.size();
    auto v = parse_trace_number(list.substr(i, j - i));
    if (!v || *v == 0 || *v > 4096)
      return unexpected(at(op.line, fmt::format("bad size list '{}'", list)));
    out.push_back(static_cast<uint32_t>(*v));
    i = j + 1;
  }
  return out;
}

Result<std::vector<std::string>> Session::request(const TraceOp& op) {
  if (op.args.empty()) return unexpected(at(op.line, "request needs a type"));
  WireRequest r;
  const std::string& type = op.args[0];
  if (type == "plug")
    r.type = VIRTIO_MEM_REQ_PLUG;
  else if (type == "unplug")
    r.type = VIRTIO_MEM_REQ_UNPLUG;
  else if (type == "unplug_all")
    r.type = VIRTIO_MEM_REQ_UNPLUG_ALL;
  else if (type == "state")
    r.type = VIRTIO_MEM_REQ_STATE;
  else {
    auto n = number(op, type, "request type");
    if (!n.has_value() || *n > 0xffff)
      return unexpected(at(op.line, fmt::format("unknown request type '{}'", type)));
    r.type = static_cast<uint16_t>(*n);
  }
  auto addr = kv_number(op, "addr", 0);
  auto nb = kv_number(op, "nb", 0);
  auto pad = kv_number(op, "pad", 0);
  auto ppad = kv_number(op, "ppad", 0);
  if (!addr.has_value()) return unexpected(addr.error());
  if (!nb.has_value() || *nb > 0xffff) return unexpected(at(op.line, "nb must be 0..65535"));
  if (!pad.has_value() || !ppad.has_value()) return unexpected(at(op.line, "bad padding"));
  r.addr = *addr;
  r.nb_blocks = static_cast<uint16_t>(*nb);
  for (int i = 0; i < 3; ++i) {
    r.padding[i] = static_cast<uint16_t>(*pad >> (16 * i));
    r.payload_padding[i] = static_cast<uint16_t>(*ppad >> (16 * i));
  }
  ChainShape shape{{24}, {10}, false};
  if (auto it = op.kv.find("shape"); it != op.kv.end()) {
    const auto slash = it->second.find('/');
    if (slash == std::string::npos) return unexpected(at(op.line, "shape is R1,R2,.../W1,W2,..."));
    auto rd = sizes(op, std::string_view(it->second).substr(0, slash));
    if (!rd.has_value()) return unexpected(rd.error());
    shape.readable = *rd;
    shape.writable.clear();
    if (slash + 1 < it->second.size()) {
      auto wr = sizes(op, std::string_view(it->second).substr(slash + 1));
      if (!wr.has_value()) return unexpected(wr.error());
      shape.writable = *wr;
    }
  }
  if (auto it = op.kv.find("indirect"); it != op.kv.end()) shape.indirect = it->second == "1";

  auto res = driver_->send(r, shape);
  if (!res.has_value()) {
    std::vector<std::string> obs = {"no_response"};
    if (machine_->device->broken()) obs.push_back("needs_reset");
    return obs;
  }
  std::vector<std::string> obs =
      split_words(format_answer(r.type, static_cast<uint16_t>(res->response.type),
                                static_cast<uint16_t>(res->response.state)));
  obs.push_back(fmt::format("used_len={}", res->used_len));
  return obs;
}

Result<std::vector<std::string>> Session::host(const TraceOp& op) {
  if (op.args.empty()) return unexpected(at(op.line, "host needs an action"));
  VirtioMemDevice& dev = *machine_->device;
  const std::string& a = op.args[0];
  if (a == "resize") {
    if (op.args.size() != 2) return unexpected(at(op.line, "host resize SIZE"));
    auto size = number(op, op.args[1], "size");
    if (!size.has_value()) return unexpected(size.error());
    return std::vector<std::string>{dev.set_requested_size(*size).has_value() ? "ok" : "error"};
  }
  if (a == "system_reset") {
    if (pci_) pci_->reset();
    dev.system_reset();
  } else if (a == "wakeup") {
    dev.wakeup_reset();
  } else if (a == "device_reset") {
    dev.write_status(0);
  } else if (a == "refuse_populate") {
    // The next populate is refused before any consumer sees it (the RAM block could not be
    // populated): the device must roll back and answer BUSY.
    if (!consumers_)
      return unexpected(at(op.line, "host refuse_populate needs a `consumers` line"));
    consumers_->refuse_next_populate();
  } else if (a == "busy") {
    if (op.args.size() != 2 || (op.args[1] != "on" && op.args[1] != "off")) {
      return unexpected(at(op.line, "host busy on|off"));
    }
    dev.set_busy(op.args[1] == "on");
  } else {
    return unexpected(at(op.line, fmt::format("unknown host action '{}'", a)));
  }
  return std::vector<std::string>{"ok"};
}

Result<std::vector<std::string>> Session::reg(const TraceOp& op) {
  // reg pci|pcicfg|mmio read OFF SIZE   /   reg pci|pcicfg|mmio write OFF SIZE VALUE
  if (op.args.size() < 4)
    return unexpected(at(op.line, "reg SPACE read|write OFFSET SIZE [VALUE]"));
  const std::string& space = op.args[0];
  const bool write = op.args[1] == "write";
  if (!write && op.args[1] != "read") return unexpected(at(op.line, "reg: read or write"));
  auto off = number(op, op.args[2], "offset");
  auto size = number(op, op.args[3], "size");
  if (!off.has_value() || !size.has_value() ||
      (*size != 1 && *size != 2 && *size != 4 && *size != 8)) {
    return unexpected(at(op.line, "reg: bad offset or size"));
  }
  uint64_t value = 0;
  if (write) {
    if (op.args.size() != 5) return unexpected(at(op.line, "reg write needs a value"));
    auto v = number(op, op.args[4], "value");
    if (!v.has_value()) return unexpected(v.error());
    value = *v;
  }
  const auto sz = static_cast<unsigned>(*size);
  if ((space == "pci" || space == "pcicfg") && !pci_)
    return unexpected(at(op.line, "the trace's transport is not pci"));
  if (space == "mmio" && !mmio_)
    return unexpected(at(op.line, "the trace's transport is not mmio"));
  if (space == "pci") {
    if (write)
      pci_->bar_write(*off, sz, value);
    else
      value = pci_->bar_read(*off, sz);
  } else if (space == "pcicfg") {
    if (write)
      pci_->config_write(static_cast<uint32_t>(*off), sz, static_cast<uint32_t>(value));
    else
      value = pci_->config_read(static_cast<uint32_t>(*off), sz);
  } else if (space == "mmio") {
    if (write)
      mmio_->write(*off, sz, value);
    else
      value = mmio_->read(*off, sz);
  } else {
    return unexpected(at(op.line, fmt::format("unknown register space '{}'", space)));
  }
  if (write) return std::vector<std::string>{"ok"};
  return std::vector<std::string>{fmt::format("value={:#x}", value)};
}

Result<std::vector<std::string>> Session::migrate() {
  const std::vector<uint8_t> stream = machine_->device->save();
  std::vector<uint8_t> ram(Machine::kRamSize);
  if (!machine_->mem.read(Machine::kRamBase, ram).has_value())
    return unexpected(Error{"cannot read guest RAM"});
  std::unique_ptr<ConsumerSet> old_consumers = std::move(consumers_);
  std::unique_ptr<Machine> old = std::move(machine_);
  driver_.reset();
  VMEM_TRY(build());
  // The destination's consumers exist before the stream loads, as in QEMU.
  if (old_consumers) {
    auto copy = old_consumers->replicate(*machine_->device);
    if (!copy.has_value()) return unexpected(copy.error());
    consumers_ = std::move(*copy);
    old_consumers.reset();  // before the source device it listens to
  }
  (void)machine_->mem.write(Machine::kRamBase, ram);
  // Device-region memory travels with the RAM too: copy what is plugged.
  if (old->device_region && machine_->device_region && old->device_region->backing.data()) {
    const uint64_t bs = options_.block_size;
    old->device->bitmap().for_each_run(
        true, 0, old->device->bitmap().size(), [&](uint64_t f, uint64_t n) {
          std::copy_n(old->device_region->backing.data() + f * bs, n * bs,
                      machine_->device_region->backing.data() + f * bs);
          return true;
        });
  }
  auto loaded = machine_->device->load(stream);
  if (!loaded.has_value()) return std::vector<std::string>{"error"};
  // The driver keeps its rings (they are in the copied RAM); only its bookkeeping is rebuilt.
  driver_->adopt_queue_state();
  return std::vector<std::string>{"ok"};
}

Result<std::vector<std::string>> Session::consumers(const TraceOp& op) {
  if (consumers_) return unexpected(at(op.line, "the consumers are set up already"));
  ConsumerOptions o;
  auto vfio = kv_number(op, "vfio", 0);
  auto limit = kv_number(op, "entry_limit", o.dma_entry_limit);
  auto memslots = kv_number(op, "memslots", 0);
  if (!vfio.has_value() || *vfio > 1) return unexpected(at(op.line, "vfio must be 0 or 1"));
  if (!limit.has_value() || *limit > UINT32_MAX) return unexpected(at(op.line, "bad entry_limit"));
  if (!memslots.has_value()) return unexpected(memslots.error());
  o.vfio = *vfio == 1;
  o.dma_entry_limit = static_cast<uint32_t>(*limit);
  o.memslot_limit = *memslots;
  auto set = ConsumerSet::attach(*machine_->device, o);
  if (!set.has_value()) return unexpected(at(op.line, set.error().message));
  consumers_ = std::move(*set);
  return std::vector<std::string>{"ok"};
}

// `consistent`, or `violations=N` and each violated invariant's tag (I1..I8, "listener").
std::vector<std::string> violation_tokens(const std::vector<Violation>& found) {
  if (found.empty()) return {"consistent"};
  std::vector<std::string> obs = {fmt::format("violations={}", found.size())};
  for (const Violation& v : found) {
    const std::string tag = v.invariant.substr(0, v.invariant.find(' '));
    if (std::find(obs.begin(), obs.end(), tag) == obs.end()) obs.push_back(tag);
  }
  return obs;
}

Result<Section> section_of(const TraceOp& op) {
  auto offset = kv_number(op, "offset", 0);
  auto size = kv_number(op, "size", 0);
  if (!offset.has_value()) return unexpected(offset.error());
  if (!size.has_value()) return unexpected(size.error());
  return Section{*offset, *size};
}

std::vector<std::string> ok_or_error(const Status& s) {
  return {s.has_value() ? "ok" : "error"};
}

Result<std::vector<std::string>> Session::migrate_corrupt(const TraceOp& op) {
  // migrate_corrupt AT MASK: the device's stream with byte AT xor MASK, loaded into a fresh
  // device with the same consumers. The device itself is untouched.
  if (op.args.size() != 2) return unexpected(at(op.line, "migrate_corrupt AT MASK"));
  VMEM_ASSIGN_OR_RETURN(uint64_t pos, number(op, op.args[0], "offset"));
  VMEM_ASSIGN_OR_RETURN(uint64_t mask, number(op, op.args[1], "mask"));
  std::vector<uint8_t> stream = machine_->device->save();
  if (pos >= stream.size() || mask > 0xff)
    return unexpected(at(op.line, fmt::format("the stream has {} bytes", stream.size())));
  stream[pos] ^= static_cast<uint8_t>(mask);
  auto dest = Machine::create(options_, trace_->backing);
  if (!dest.has_value()) return unexpected(dest.error());
  std::unique_ptr<ConsumerSet> dest_consumers;
  if (consumers_) {
    auto copy = consumers_->replicate(*(*dest)->device);
    if (!copy.has_value()) return unexpected(copy.error());
    dest_consumers = std::move(*copy);
  }
  // A rejected stream leaves nothing inconsistent; a loaded one is checked in full.
  if (!(*dest)->device->load(stream).has_value())
    return std::vector<std::string>{"rejected", "consistent"};
  const std::vector<Violation> found = dest_consumers
                                           ? dest_consumers->check_full()
                                           : InvariantChecker(*(*dest)->device).check_full();
  std::vector<std::string> obs = violation_tokens(found);
  obs.insert(obs.begin(), "loaded");
  return obs;
}

Result<std::vector<std::string>> Session::listener(const TraceOp& op) {
  // listener add NAME offset= size= [double_discard=1] | listener del NAME |
  // listener refuse NAME after=K
  if (!consumers_) return unexpected(at(op.line, "listener before a `consumers` line"));
  if (op.args.size() != 2) return unexpected(at(op.line, "listener add|del|refuse NAME ..."));
  const std::string& name = op.args[1];
  if (op.args[0] == "add") {
    VMEM_ASSIGN_OR_RETURN(Section s, section_of(op));
    auto dd = op.kv.find("double_discard");
    return ok_or_error(consumers_->add_listener(name, s, dd != op.kv.end() && dd->second == "1"));
  }
  if (op.args[0] == "del") return ok_or_error(consumers_->remove_listener(name));
  if (op.args[0] == "refuse") {
    auto after = kv_number(op, "after", 0);
    if (!after.has_value()) return unexpected(after.error());
    return ok_or_error(consumers_->refuse_populate(name, *after));
  }
  return unexpected(at(op.line, fmt::format("unknown listener action '{}'", op.args[0])));
}

Result<std::vector<std::string>> Session::vfio(const TraceOp& op) {
  // vfio add offset= size= | vfio del offset= size= | vfio fail_map N
  if (!consumers_) return unexpected(at(op.line, "vfio before a `consumers` line"));
  if (op.args.empty()) return unexpected(at(op.line, "vfio add|del|fail_map ..."));
  if (op.args[0] == "add" || op.args[0] == "del") {
    VMEM_ASSIGN_OR_RETURN(Section s, section_of(op));
    return ok_or_error(op.args[0] == "add" ? consumers_->vfio_add(s) : consumers_->vfio_del(s));
  }
  if (op.args[0] == "fail_map" && op.args.size() == 2) {
    VMEM_ASSIGN_OR_RETURN(uint64_t n, number(op, op.args[1], "map count"));
    return ok_or_error(consumers_->fail_nth_map(n));
  }
  return unexpected(at(op.line, "vfio add|del offset= size=, or vfio fail_map N"));
}

Result<std::vector<std::string>> Session::check() {
  // The full invariant check over the device and its consumers.
  std::vector<Violation> found =
      consumers_ ? consumers_->check_full() : InvariantChecker(*machine_->device).check_full();
  std::vector<std::string> obs = violation_tokens(found);
  if (found.empty()) obs.insert(obs.begin(), "ok");
  return obs;
}

Result<std::vector<std::string>> Session::run(const TraceOp& op) {
  VirtioMemDevice& dev = *machine_->device;
  if (op.verb == "request") return request(op);
  if (op.verb == "host") return host(op);
  if (op.verb == "reg") return reg(op);
  if (op.verb == "migrate") return migrate();
  if (op.verb == "migrate_corrupt") return migrate_corrupt(op);
  if (op.verb == "consumers") return consumers(op);
  if (op.verb == "listener") return listener(op);
  if (op.verb == "vfio") return vfio(op);
  if (op.verb == "check") return check();
  if (op.verb == "init") {
    std::optional<uint64_t> features;
    if (auto it = op.kv.find("features"); it != op.kv.end()) {
      auto f = number(op, it->second, "features");
      if (!f.has_value()) return unexpected(f.error());
      features = *f;
    }
    return std::vector<std::string>{fmt::format("status={:#x}", driver_->initialize(features))};
  }
  if (op.verb == "config") {
    const WireConfig c = dev.config();
    return std::vector<std::string>{fmt::format("block_size={:#x}", c.block_size),
                                    fmt::format("node_id={}", c.node_id),
                                    fmt::format("addr={:#x}", c.addr),
                                    fmt::format("region_size={:#x}", c.region_size),
                                    fmt::format("usable_region_size={:#x}", c.usable_region_size),
                                    fmt::format("plugged_size={:#x}", c.plugged_size),
                                    fmt::format("requested_size={:#x}", c.requested_size),
                                    fmt::format("generation={}", dev.config_generation())};
  }
  if (op.verb == "status")
    return std::vector<std::string>{fmt::format("status={:#x}", dev.status())};
  if (op.verb == "isr")
    return std::vector<std::string>{fmt::format("isr={:#x}", dev.read_and_clear_isr())};
  if (op.verb == "notify") {
    if (op.args.size() != 1) return unexpected(at(op.line, "notify QUEUE"));
    auto q = number(op, op.args[0], "queue");
    if (!q.has_value() || *q > 0xffff) return unexpected(at(op.line, "bad queue index"));
    dev.notify_queue(static_cast<uint16_t>(*q));
    return std::vector<std::string>{"ok"};
  }
  if (op.verb == "memwrite" || op.verb == "memread") {
    if (op.args.size() != 2)
      return unexpected(
          at(op.line, fmt::format("{} ADDR {}", op.verb, op.verb == "memwrite" ? "HEX" : "LEN")));
    auto addr = number(op, op.args[0], "address");
    if (!addr.has_value()) return unexpected(addr.error());
    if (op.verb == "memwrite") {
      auto bytes = parse_hex(op.args[1]);
      if (!bytes) return unexpected(at(op.line, "memwrite: bad hex"));
      return std::vector<std::string>{machine_->mem.write(*addr, *bytes).has_value() ? "ok"
                                                                                     : "error"};
    }
    auto len = number(op, op.args[1], "length");
    if (!len.has_value() || *len > (1u << 20))
      return unexpected(at(op.line, "memread: length up to 1 MiB"));
    std::vector<uint8_t> buf(*len);
    if (!machine_->mem.read(*addr, buf).has_value()) return std::vector<std::string>{"error"};
    return std::vector<std::string>{to_hex(buf)};
  }
  if (op.verb == "load") {
    if (op.args.size() != 1) return unexpected(at(op.line, "load HEX"));
    auto bytes = parse_hex(op.args[0]);
    if (!bytes) return unexpected(at(op.line, "load: bad hex"));
    return std::vector<std::string>{dev.load(*bytes).has_value() ? "ok" : "error"};
  }
  if (op.verb == "save") return std::vector<std::string>{to_hex(dev.save())};
  return unexpected(at(op.line, fmt::format("unknown operation '{}'", op.verb)));
}

// Every expected token must be among the observed ones: a trace may check only some fields.
bool matches(const std::vector<std::string>& expect, const std::vector<std::string>& observed) {
  for (const std::string& e : expect) {
    if (std::find(observed.begin(), observed.end(), e) == observed.end()) return false;
  }
  return true;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

ReplayReport replay_trace(const Trace& trace, std::optional<std::string> fault) {
  ReplayReport report;
  report.recorded = trace;
  DeviceOptions o = trace.options;
  if (fault) o.fault = *fault;
  auto session = Session::create(trace, o);
  if (!session.has_value()) {
    report.error = session.error().message;
    return report;
  }
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    const TraceOp& op = trace.ops[i];
    auto observed = (*session)->run(op);
    if (!observed.has_value()) {
      report.error = observed.error().message;
      return report;
    }
    ++report.steps;
    report.recorded.ops[i].has_expect = true;
    report.recorded.ops[i].expect = *observed;
    if (op.has_expect && !matches(op.expect, *observed)) {
      TraceOp shown = op;
      shown.has_expect = false;
      std::string text =
          format_trace(Trace{trace.options, trace.backing, trace.transport, {shown}});
      text = text.substr(text.rfind('\n', text.size() - 2) + 1);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      report.mismatch = ReplayMismatch{op.line, text, join(op.expect), join(*observed)};
      return report;
    }
  }
  return report;
}

VMEM_NAMESPACE_END
