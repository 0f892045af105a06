#include "conformance/suite/check.h"

#include <fmt/format.h>

namespace vmem::conformance {

namespace {
// Each device's rings and buffers get their own MiB of scratch RAM.
constexpr uint64_t kScratchPerDevice = 1ULL << 20;
// The model keeps one bit per block of the region; a geometry beyond that (or no geometry at
// all) ends the check with the reason rather than an allocation the machine cannot make.
constexpr uint64_t kMaxModelBlocks = 1ULL << 28;

Status modelable(const WireConfig& c) {
  const uint64_t bs = c.block_size;
  if (bs == 0 || (bs & (bs - 1)) != 0) {
    return unexpected(
        Error{fmt::format("the device reports block_size {:#x}, not a power of two", bs)});
  }
  if (c.region_size / bs > kMaxModelBlocks) {
    return unexpected(Error{fmt::format(
        "the device reports a region of {:#x} blocks of {:#x}; the suite models at most {:#x}",
        c.region_size / bs, bs, kMaxModelBlocks)});
  }
  return ok();
}

}  // namespace

std::string resp_name(const WireResponse& r) {
  if (r.type <= VIRTIO_MEM_RESP_ERROR) return to_string(static_cast<RespType>(r.type));
  return fmt::format("unknown ({})", r.type);
}

CheckContext::CheckContext(const CheckDef& def, const Catalog& catalog, Target& target,
                           MachineLayout layout, std::chrono::milliseconds completion_timeout)
    : def_(def),
      catalog_(catalog),
      target_(target),
      layout_(std::move(layout)),
      timeout_(completion_timeout) {}

CheckContext::~CheckContext() = default;

Status CheckContext::attach() {
  devices_.clear();
  if (layout_.scratch_size < kScratchPerDevice * def_.setup.devices)
    return unexpected(Error{"the target's scratch RAM is too small for the driver's queues"});
  for (unsigned i = 0; i < def_.setup.devices; ++i) {
    VMEM_ASSIGN_OR_RETURN(auto transport, probe(target_, layout_, VIRTIO_ID_MEM, i));
    Device d;
    d.driver = std::make_unique<MemDriver>(target_, std::move(transport),
                                           layout_.scratch_base + i * kScratchPerDevice, timeout_);
    VMEM_ASSIGN_OR_RETURN(d.initial, d.driver->read_config());
    VMEM_TRY(modelable(d.initial));
    d.shadow = Shadow(d.initial);
    if (TraceRecorder* r = recorder(i)) r->device(d.initial);
    devices_.push_back(std::move(d));
  }
  return ok();
}

Status CheckContext::reattach(unsigned dev) {
  VMEM_ASSIGN_OR_RETURN(auto transport, probe(target_, layout_, VIRTIO_ID_MEM, dev));
  Device& d = devices_[dev];
  d.driver = std::make_unique<MemDriver>(target_, std::move(transport),
                                         layout_.scratch_base + dev * kScratchPerDevice, timeout_);
  d.shadow.unplug_all();
  if (TraceRecorder* r = recorder(dev)) r->init();
  VMEM_ASSIGN_OR_RETURN(uint8_t status, d.driver->initialize());
  if (status != 0x0f) {
    return unexpected(Error{fmt::format("status {:#x} after re-initializing the device", status)});
  }
  return ok();
}

Status CheckContext::initialize(unsigned dev, std::optional<uint64_t> features) {
  if (TraceRecorder* r = recorder(dev)) r->init();
  VMEM_ASSIGN_OR_RETURN(uint8_t s, devices_[dev].driver->initialize(features));
  if (s != 0x0f) {
    return unexpected(Error{fmt::format("device {}: status {:#x} after initialization", dev, s)});
  }
  return ok();
}

bool CheckContext::expect(std::string_view id, bool holds, std::string evidence) {
  Outcome o = Outcome::Pass;
  if (!holds) {
    const Requirement* r = catalog_.find(std::string(id));
    o = r ? outcome_from_string(r->on_violation).value_or(Outcome::Fail) : Outcome::Fail;
    // Where the device broke a rule is where a reader of the trace looks first.
    if (recorder_) recorder_->comment(fmt::format("{} {}: {}", to_string(o), id, evidence));
  }
  verdicts_.push_back({std::string(id), o, std::move(evidence), def_.name});
  return holds;
}

void CheckContext::info(std::string_view id, std::string evidence) {
  verdicts_.push_back({std::string(id), Outcome::Info, std::move(evidence), def_.name});
}

void CheckContext::skip(std::string_view id, std::string reason) {
  verdicts_.push_back({std::string(id), Outcome::Skip, std::move(reason), def_.name});
}

void CheckContext::fail(std::string_view id, std::string evidence) {
  verdicts_.push_back({std::string(id), Outcome::Fail, std::move(evidence), def_.name});
}

Result<Exchange> CheckContext::send(const WireRequest& r, unsigned dev, const ChainShape& shape) {
  VMEM_ASSIGN_OR_RETURN(Exchange x, devices_[dev].driver->send(r, shape));
  if (x.kind == Exchange::Kind::Used && x.response && x.used_id == x.head)
    devices_[dev].shadow.apply(r, *x.response);
  if (TraceRecorder* rec = recorder(dev)) rec->request(r, shape, x);
  return x;
}

Status CheckContext::recorded(unsigned dev, std::string_view action, Status s) {
  if (TraceRecorder* r = recorder(dev)) r->host(action, s.has_value());
  return s;
}

Status CheckContext::set_requested_size(unsigned dev, uint64_t size) {
  return recorded(dev, fmt::format("resize {:#x}", size), target_.set_requested_size(dev, size));
}

// The machine-wide actions are recorded with device 0's run.
Status CheckContext::system_reset() {
  return recorded(0, "system_reset", target_.system_reset());
}

Status CheckContext::set_busy(bool busy) {
  return recorded(0, busy ? "busy on" : "busy off", target_.set_busy(busy));
}

Status CheckContext::suspend_resume() {
  return recorded(0, "wakeup", target_.suspend_resume());
}

Status CheckContext::refuse_next_populate(unsigned dev) {
  return recorded(dev, "refuse_populate", target_.refuse_next_populate(dev));
}

Result<WireResponse> CheckContext::request(uint16_t type, uint64_t addr, uint16_t nb_blocks,
                                           unsigned dev) {
  WireRequest r;
  r.type = type;
  r.addr = addr;
  r.nb_blocks = nb_blocks;
  VMEM_ASSIGN_OR_RETURN(Exchange x, send(r, dev));
  // A well-formed request that does not come back well-formed breaks a generic rule before it
  // stops the check: judge that rule, so the verdict names it.
  const std::string what = fmt::format("{} {:#x}+{}", request_type_name(type), addr, nb_blocks);
  if (x.kind != Exchange::Kind::Used) {
    const std::string e = fmt::format("{}: {}", what, to_string(x.kind));
    if (x.kind == Exchange::Kind::NoAnswer) expect("GEN-2", false, e);
    return unexpected(Error{e});
  }
  if (x.used_id != x.head) {
    const std::string e =
        fmt::format("{}: used element id {} for head {}", what, x.used_id, x.head);
    expect("GEN-11", false, e);
    return unexpected(Error{e});
  }
  if (!x.response) {
    const std::string e =
        fmt::format("{}: used length {} (a response is {} bytes)", what, x.used_len, kResponseSize);
    expect("GEN-8", false, e);
    return unexpected(Error{e});
  }
  return *x.response;
}

Status CheckContext::plug_blocks(uint64_t first, uint16_t n, unsigned dev) {
  VMEM_ASSIGN_OR_RETURN(WireResponse r, plug(block(first, dev), n, dev));
  if (r.type != VIRTIO_MEM_RESP_ACK) {
    return unexpected(
        Error{fmt::format("set-up PLUG {:#x}+{} answered {}", block(first, dev), n, resp_name(r))});
  }
  return ok();
}

Status CheckContext::verify_model() {
  for (unsigned dev = 0; dev < devices_.size(); ++dev) {
    VMEM_ASSIGN_OR_RETURN(WireConfig c, devices_[dev].driver->read_config());
    if (TraceRecorder* r = recorder(dev)) r->config(c);
    const Shadow& s = devices_[dev].shadow;
    const uint64_t want = s.plugged_count() * s.block_size();
    if (c.plugged_size != want) {
      expect("DEV-3", false,
             fmt::format("device {}: plugged_size {:#x}, but the acknowledged requests leave {} "
                         "blocks ({:#x}) plugged",
                         dev, c.plugged_size, s.plugged_count(), want));
    }
    // The sweep uses the geometry the check started with (a device that changed it has broken
    // DEV-2 already), so a hostile configuration cannot make it long.
    const uint64_t usable = std::min(c.usable_region_size / s.block_size(), s.blocks());
    for (uint64_t first = 0; first < usable; first += 0xffff) {
      VMEM_TRY(verify_range(dev, first, std::min<uint64_t>(0xffff, usable - first), 0));
    }
  }
  return ok();
}

Status CheckContext::verify_range(unsigned dev, uint64_t first, uint64_t n, int depth) {
  const Shadow& s = devices_[dev].shadow;
  const uint64_t gpa = block(first, dev);
  VMEM_ASSIGN_OR_RETURN(WireResponse r,
                        request(VIRTIO_MEM_REQ_STATE, gpa, static_cast<uint16_t>(n), dev));
  if (r.type != VIRTIO_MEM_RESP_ACK) {
    expect("DEV-47", false,
           fmt::format("device {}: STATE {:#x}+{} inside the usable region answered {}", dev, gpa,
                       n, to_string(static_cast<RespType>(r.type))));
    return ok();
  }
  const BlockState want = s.state(first, n);
  if (r.state != static_cast<uint16_t>(want)) {
    expect("DEV-48", false,
           fmt::format("device {}: STATE {:#x}+{} is {} ({}), but the acknowledged requests "
                       "leave it {}",
                       dev, gpa, n, to_string(static_cast<BlockState>(r.state)), r.state,
                       to_string(want)));
    return ok();
  }
  if (want == BlockState::Mixed && n > 1 && depth < 24) {
    VMEM_TRY(verify_range(dev, first, n / 2, depth + 1));
    VMEM_TRY(verify_range(dev, first + n / 2, n - n / 2, depth + 1));
  }
  return ok();
}

}  // namespace vmem::conformance
