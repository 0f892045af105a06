#include <fmt/format.h>
#include <z3++.h>

#include <array>
#include <optional>

#include "proofs/block_invariants.h"
#include "proofs/listener_invariants.h"
#include "proofs/proof.h"
#include "proofs/solver.h"
#include "proofs/z3_int_word.h"
#include "proofs/z3_word.h"
#include "reference/mem/block_state.h"
#include "reference/mem/consumer_rules.h"
#include "reference/mem/rules.h"
#include "reference/trace/trace.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::Proved:
      return "proved";
    case Outcome::Failed:
      return "FAILED";
    case Outcome::Unknown:
      return "UNKNOWN";
  }
  return "?";
}

namespace {

using Expr = z3::expr;

// DEV-26/33/46: valid_range accepts exactly the aligned, non-empty ranges inside the usable
// region, for every 64-bit input and every geometry.
ProofResult range_check_exact(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr addr = m.var("addr"), usable = m.var("usable_region_size"),
             region = m.var("region_size"), bs = m.var("block_size"), gpa = m.var("gpa");
  const Expr nb = z3::zext(c.bv_const("nb_blocks", 16), 48);
  z3::solver s = make_solver(c, o);
  s.add(pow2(m, bs));
  s.add(aligned(m, addr, bs) && aligned(m, region, bs) && aligned(m, usable, bs));
  s.add(z3::ule(usable, region) && m.negate(m.add_overflows(addr, region)));
  const Expr end = wide(gpa) + wide(nb) * wide(bs);
  const Expr spec = aligned(m, gpa, bs) && nb != m.lit(0) && z3::ule(addr, gpa) &&
                    z3::ule(end, wide(addr) + wide(usable));
  const Expr code = rules::valid_range(m, addr, usable, bs, gpa, nb, o.fault);
  ProofResult r =
      decide("range_check_exact", "DEV-26, DEV-33, DEV-46; all 64-bit inputs", s, code != spec,
             {{"addr", addr},
              {"usable_region_size", usable},
              {"region_size", region},
              {"block_size", bs},
              {"gpa", gpa},
              {"nb_blocks", nb},
              {"valid_range", code},
              {"spec", spec}});
  if (r.outcome != Outcome::Failed) return r;
  // Look for a counterexample the reference device can run: a geometry it accepts (blocks of
  // 4 KiB or more, at most 2^32 of them, above the 64 MiB of guest RAM), with the usable region
  // equal to requested_size (extent 0).
  z3::solver d = make_solver(c, o);
  d.add(pow2(m, bs) && z3::ule(m.lit(4096), bs) && aligned(m, addr, bs) && aligned(m, region, bs));
  d.add(aligned(m, usable, bs) && z3::ule(usable, region) && usable != m.lit(0));
  d.add(m.negate(m.add_overflows(addr, region)) && z3::ule(m.lit(64ULL << 20), addr));
  d.add(z3::ule(z3::udiv(region, bs), m.lit(1ULL << 32)) && z3::ule(region, m.lit(1ULL << 46)));
  d.add(code != spec);
  if (d.check() != z3::sat) return r;
  const z3::model model = d.get_model();
  const bool spec_valid = model.eval(spec, true).is_true();
  r.trace = fmt::format(
      "vmemtrace 1\n# range_check_exact counterexample: the spec says {}\n"
      "device addr={:#x} region_size={:#x} block_size={:#x} requested_size={:#x} extent=0x0 "
      "backing=null\ninit -> status=0xf\nrequest state addr={:#x} nb={} -> {}\n",
      spec_valid ? "valid" : "invalid", u64(model, addr), u64(model, region), u64(model, bs),
      u64(model, usable), u64(model, gpa), u64(model, nb), spec_valid ? "ack" : "error");
  return r;
}

// The facts the verdict table speaks of, for one request.
struct VerdictFacts {
  bool valid, over_quota, wrong_state, busy, anything_plugged;
};

// A counterexample to the verdict table as a trace (decisions D7): a device of 64 blocks of 2 MiB
// whose usable region spans the region and whose requested_size is 4 blocks, a pre-state and a
// request that have exactly `f`'s facts, and the fault-free verdict as the expectation. A fact
// the device never computes (a wrong state of an invalid range) does not change the request.
std::string verdict_trace(const std::string& name, Profile p, const std::string& request,
                          const VerdictFacts& f) {
  DeviceOptions d;
  d.profile = p;
  d.addr = 4ULL << 30;
  d.block_size = 2ULL << 20;
  d.region_size = 64 * d.block_size;
  d.requested_size = 4 * d.block_size;
  d.usable_extent = d.region_size;
  const U64 u;
  const auto gpa = [&](uint64_t block) { return d.addr + block * d.block_size; };
  // Invalid: half a block off. Valid: block 8 on (unplugged) or block 0 on (plugged first).
  const auto addr = [&](uint64_t block) { return f.valid ? gpa(block) : gpa(block) + 4096; };
  const auto answer = [](uint64_t code) {
    return trace_word(to_string(static_cast<RespType>(code)));
  };
  std::string pre, step;
  uint64_t plugged = 0;
  if (request == "plug") {
    if (f.wrong_state && f.valid) {
      pre = fmt::format("request plug addr={:#x} nb=1 -> ack\n", gpa(0));
      plugged = 1;
    }
    // Over quota: more blocks than requested_size leaves room for.
    const uint64_t nb = f.over_quota ? 5 - plugged : 1;
    const uint64_t verdict = rules::plug_verdict(u, p, f.valid, f.over_quota,
                                                 f.wrong_state && f.valid, f.busy, Fault::None);
    step = fmt::format("request plug addr={:#x} nb={} -> {}\n", addr(plugged == 1 ? 0 : 8), nb,
                       answer(verdict));
  } else if (request == "unplug") {
    pre = fmt::format("request plug addr={:#x} nb=2 -> ack\n", gpa(8));
    const bool wrong = f.wrong_state && f.valid;
    const uint64_t verdict = rules::unplug_verdict(u, f.valid, wrong, f.busy);
    step = fmt::format("request unplug addr={:#x} nb=2 -> {}\n", addr(wrong ? 10 : 8),
                       answer(verdict));
  } else if (request == "unplug_all") {
    if (f.anything_plugged) pre = fmt::format("request plug addr={:#x} nb=1 -> ack\n", gpa(8));
    const uint64_t verdict = rules::unplug_all_verdict(
        u, p, f.busy, f.anything_plugged ? d.block_size : uint64_t{0}, Fault::None);
    step = fmt::format("request unplug_all -> {}\n", answer(verdict));
  } else {
    step = fmt::format("request state addr={:#x} nb=1 -> {}\n", addr(8),
                       answer(rules::state_verdict(u, f.valid)));
  }
  return fmt::format(
      "vmemtrace 1\n# counterexample to {}: a {} request\n{}\ninit -> status=0xf\n{}{}{}", name,
      request, format_device_line(d, BackingKind::Null, "none"), pre,
      f.busy ? "host busy on -> ok\n" : "", step);
}

// D1's table: the verdict of every request type, in each profile, for every combination of
// the facts a request has.
ProofResult verdict_order(Profile p, const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr v = c.bool_const("valid"), q = c.bool_const("over_quota"),
             w = c.bool_const("wrong_state"), b = c.bool_const("busy");
  const Expr plugged = m.var("plugged_size");
  const Expr ack = m.lit(VIRTIO_MEM_RESP_ACK), nack = m.lit(VIRTIO_MEM_RESP_NACK),
             busy = m.lit(VIRTIO_MEM_RESP_BUSY), err = m.lit(VIRTIO_MEM_RESP_ERROR);
  const Expr plug = rules::plug_verdict(m, p, v, q, w, b, o.fault);
  const Expr unplug = rules::unplug_verdict(m, v, w, b);
  const Expr all = rules::unplug_all_verdict(m, p, b, plugged, o.fault);
  const Expr state = rules::state_verdict(m, v);
  Expr plug_ok = z3::implies(!v, plug == err) &&                 // DEV-26
                 z3::implies(v && !w && !q && !b, plug == ack);  // DEV-29
  if (p == Profile::Spec) {
    plug_ok = plug_ok && z3::implies(v && w, plug == err) &&  // DEV-27 first
              z3::implies(v && !w && q, plug == nack) &&
              z3::implies(v && !w && !q && b, plug == busy);
  } else {
    plug_ok = plug_ok && z3::implies(v && q, plug == nack) &&  // QEMU: the limit first
              z3::implies(v && !q && w, plug == err) &&
              z3::implies(v && !q && !w && b, plug == busy);
  }
  const Expr unplug_ok = z3::implies(!v || w, unplug == err) &&  // DEV-33, DEV-34
                         z3::implies(v && !w && b, unplug == busy) &&
                         z3::implies(v && !w && !b, unplug == ack);
  Expr all_ok = (all == ack || all == busy) && z3::implies(!b, all == ack);  // DEV-40, DEV-41
  if (p != Profile::Qemu72) all_ok = all_ok && z3::implies(plugged == m.lit(0), all == ack);
  const Expr state_ok = (state == ack) == v && (state == ack || state == err);  // DEV-46, DEV-47
  z3::solver s = make_solver(c, o);
  const Expr claim = plug_ok && unplug_ok && all_ok && state_ok;
  ProofResult r =
      decide(fmt::format("verdict_order[{}]", profile_name(p)),
             "DEV-26/27/29, DEV-33/34/36, DEV-40/41, DEV-46/47; decisions D1", s, !claim,
             {{"valid", v},
              {"over_quota", q},
              {"wrong_state", w},
              {"busy", b},
              {"plugged_size", plugged},
              {"plug", plug},
              {"unplug", unplug},
              {"unplug_all", all}});
  if (r.outcome != Outcome::Failed) return r;
  s.add(!claim);
  if (s.check() != z3::sat) return r;
  const z3::model model = s.get_model();
  const auto holds = [&](const Expr& e) { return model.eval(e, true).is_true(); };
  const VerdictFacts facts{holds(v), holds(q), holds(w), holds(b), !holds(plugged == m.lit(0))};
  const char* request = !holds(plug_ok)     ? "plug"
                        : !holds(unplug_ok) ? "unplug"
                        : !holds(all_ok)    ? "unplug_all"
                                            : "state";
  r.trace = verdict_trace(r.name, p, request, facts);
  return r;
}

// A counterexample to usable_region_bounds that the reference can run: a device created with
// requested_size r0 (its usable size computed as at a system reset), a host resize to r1, then
// an UNPLUG_ALL (which may shrink the usable region), each followed by the configuration the
// fault-free logic gives. Z3 picks a geometry the device accepts (addr 4 GiB, blocks of 4 KiB to
// 1 GiB, at most 2^20 of them, an extent of any size up to the region) on which the fault's logic
// differs at one of the three steps; the usable region's rules are the ones the device runs, so the
// replay on the mutant mismatches there. Empty when no such geometry exists.
std::string usable_trace(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr region = m.var("region_size"), bs = m.var("block_size"), extent = m.var("extent"),
             r0 = m.var("requested_at_creation"), r1 = m.var("requested_after_resize");
  z3::solver s = make_solver(c, o);
  s.add(pow2(m, bs) && z3::uge(bs, m.lit(4096)) && z3::ule(bs, m.lit(1ULL << 30)));
  s.add(aligned(m, region, bs) && z3::ugt(region, m.lit(0)) &&
        z3::ule(region, m.mul(bs, m.lit(1ULL << 20))));
  s.add(z3::ule(extent, region));  // any extent: the device rounds what it adds up
  s.add(aligned(m, r0, bs) && aligned(m, r1, bs) && z3::ule(r0, region) && z3::ule(r1, region) &&
        r0 != r1);
  const auto chain = [&](Fault f) {
    const Expr u0 =
        rules::resized_usable_region(m, region, bs, extent, r0, m.lit(0), c.bool_val(true), f);
    const Expr u1 = rules::usable_after_host_resize(m, region, bs, extent, r1, u0, f);
    const Expr u2 =
        rules::resized_usable_region(m, region, bs, extent, r1, u1, c.bool_val(true), f);
    return std::array<Expr, 3>{u0, u1, u2};
  };
  const auto clean = chain(Fault::None), faulty = chain(o.fault);
  s.add(clean[0] != faulty[0] || clean[1] != faulty[1] || clean[2] != faulty[2]);
  if (s.check() != z3::sat) return {};
  const z3::model model = s.get_model();
  return fmt::format(
      "vmemtrace 1\n"
      "# usable_region_bounds: a creation, a host resize and an UNPLUG_ALL, with the usable\n"
      "# sizes the fault-free logic gives\n"
      "device profile=spec addr=0x100000000 region_size={:#x} block_size={:#x} "
      "requested_size={:#x} extent={:#x} backing=null\n"
      "init\n"
      "config -> usable_region_size={:#x}\n"
      "host resize {:#x} -> ok\n"
      "config -> usable_region_size={:#x}\n"
      "request unplug_all -> ack\n"
      "config -> usable_region_size={:#x}\n",
      u64(model, region), u64(model, bs), u64(model, r0), u64(model, extent), u64(model, clean[0]),
      u64(model, r1), u64(model, clean[1]), u64(model, clean[2]));
}

// DEV-4, DEV-6, DEV-8: the usable region stays block-aligned, covers requested_size, stays
// inside the region, and never shrinks outside UNPLUG_ALL and system reset.
ProofResult usable_region_bounds(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr region = m.var("region_size"), bs = m.var("block_size"), extent = m.var("extent"),
             requested = m.var("requested_size"), current = m.var("current_usable");
  const Expr can_shrink = c.bool_const("can_shrink");
  z3::solver s = make_solver(c, o);
  s.add(pow2(m, bs) && aligned(m, region, bs) && aligned(m, requested, bs) &&
        aligned(m, current, bs));
  s.add(z3::ule(requested, region) && z3::ule(current, region) && z3::ule(requested, current));
  const Expr u =
      rules::resized_usable_region(m, region, bs, extent, requested, current, can_shrink, o.fault);
  const Expr claim = aligned(m, u, bs) && z3::ule(requested, u) && z3::ule(u, region) &&
                     z3::implies(!can_shrink, z3::ule(current, u));
  ProofResult r =
      decide("usable_region_bounds", "DEV-4, DEV-6, DEV-8, DEV-43; all 64-bit inputs", s, !claim,
             {{"region_size", region},
              {"block_size", bs},
              {"extent", extent},
              {"requested_size", requested},
              {"current_usable", current},
              {"can_shrink", can_shrink},
              {"usable", u}});
  if (r.outcome == Outcome::Failed) r.trace = usable_trace(o);
  return r;
}

// A counterexample to clip_exact that the reference can run: a recording listener on a section
// and a PLUG that overlaps it, where the fault's clip of the section against the request (as the
// discard manager calls it) tells the listener of other blocks than the fault-free clip. The
// trace expects the fault-free outcome, a consistent check; on the mutant the listener's view
// is no longer plugged ∩ its section. Empty when no such section and request exist.
std::string clip_trace(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const DeviceOptions d = consumer_trace_device(64);
  const uint64_t blocks = d.region_size / d.block_size;
  const Expr sf = m.var("section_first"), se = m.var("section_end"), f = m.var("first"),
             e = m.var("end");
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(sf, se) && z3::ule(se, m.lit(blocks)) && z3::ult(f, e) &&
        z3::ule(e, m.lit(blocks)));
  s.add(z3::ult(f, se) && z3::ult(sf, e));  // the request meets the section
  const Expr bs = m.lit(d.block_size);
  const auto clipped = [&](Fault fault) {
    return rules::clip(m, sf * bs, (se - sf) * bs, f * bs, (e - f) * bs, fault);
  };
  const auto clean = clipped(Fault::None), faulty = clipped(o.fault);
  s.add(clean.offset != faulty.offset || clean.size != faulty.size);
  if (s.check() != z3::sat) return {};
  const z3::model model = s.get_model();
  return fmt::format(
      "vmemtrace 1\n"
      "# clip_exact: a listener on blocks [{}, {}) and a PLUG of blocks [{}, {})\n"
      "{}\ninit -> status=0xf\nconsumers vfio=0 -> ok\n"
      "listener add L0 offset={:#x} size={:#x} -> ok\n"
      "request plug addr={:#x} nb={} -> ack\n"
      "check -> ok consistent\n",
      u64(model, sf), u64(model, se), u64(model, f), u64(model, e),
      format_device_line(d, BackingKind::Null, "none"), u64(model, sf) * d.block_size,
      (u64(model, se) - u64(model, sf)) * d.block_size, d.addr + u64(model, f) * d.block_size,
      u64(model, e) - u64(model, f));
}

// Section clipping yields exactly the common bytes of its inputs: never a byte outside either
// (inside both, in 128-bit arithmetic), never an empty result when they overlap, and it reaches
// from the later start to the earlier end.
ProofResult clip_exact(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr a = m.var("a"), as = m.var("a_size"), b = m.var("b"), bsz = m.var("b_size");
  z3::solver s = make_solver(c, o);
  s.add(m.negate(m.add_overflows(a, as)) && m.negate(m.add_overflows(b, bsz)));
  const auto r = rules::clip(m, a, as, b, bsz, o.fault);
  const Expr off = wide(r.offset), end = wide(r.offset) + wide(r.size);
  const Expr a_end = wide(a) + wide(as), b_end = wide(b) + wide(bsz);
  const Expr overlap =
      z3::ult(wide(a), b_end) && z3::ult(wide(b), a_end) && as != m.lit(0) && bsz != m.lit(0);
  const Expr later_start = z3::ite(z3::ult(wide(a), wide(b)), wide(b), wide(a));
  const Expr earlier_end = z3::ite(z3::ult(a_end, b_end), a_end, b_end);
  const Expr inside =
      z3::implies(r.size != m.lit(0), z3::ule(wide(a), off) && z3::ule(end, a_end) &&
                                          z3::ule(wide(b), off) && z3::ule(end, b_end));
  const Expr claim = inside && (overlap == (r.size != m.lit(0))) &&
                     z3::implies(overlap, off == later_start && end == earlier_end);
  ProofResult result =
      decide("clip_exact",
             "section clipping (QEMU memory_region_section_intersect_range); all inputs", s, !claim,
             {{"a", a},
              {"a_size", as},
              {"b", b},
              {"b_size", bsz},
              {"clip_offset", r.offset},
              {"clip_size", r.size}});
  if (result.outcome == Outcome::Failed) result.trace = clip_trace(o);
  return result;
}

// A counterexample to memslot_geometry that the reference can run: two dynamic memslots over a
// region of 16 MiB blocks (more than 128 of them, so that each memslot is past QEMU's 1 GiB
// minimum) whose size the fault's decision gets wrong. The trace expects a consistent check; on
// the mutant the checker finds the memslot size not block-aligned (I4). Empty when no such
// region exists.
std::string memslot_geometry_trace(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr blocks = m.var("region_blocks");
  const Expr bs = m.lit(16ULL << 20);
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(m.lit(128), blocks) && z3::ule(blocks, m.lit(256)));
  const auto clean = rules::decide_memslots(m, blocks * bs, bs, m.lit(2));
  const auto faulty = rules::decide_memslots(m, blocks * bs, bs, m.lit(2), o.fault);
  s.add(clean.size != faulty.size || clean.count != faulty.count);
  if (s.check() != z3::sat) return {};
  const z3::model model = s.get_model();
  const DeviceOptions d = memslot_trace_device(u64(model, blocks));
  return fmt::format(
      "vmemtrace 1\n# memslot_geometry: two memslots over {} blocks, each of {:#x} bytes\n"
      "{}\ninit -> status=0xf\nconsumers memslots=2 -> ok\ncheck -> ok consistent\n",
      u64(model, blocks), u64(model, clean.size), format_device_line(d, BackingKind::Null, "none"));
}

// Dynamic memslots, first lemma: for every geometry the device accepts and every limit QEMU can
// decide (at most 256; here up to 1024), the memslot size is non-zero (so memslot indices never
// divide by zero) and a multiple of the block size, and a limit of 0 or 1 gives one memslot.
ProofResult memslot_geometry(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr region = m.var("region_size"), bs = m.var("block_size"), limit = m.var("limit");
  z3::solver s = make_solver(c, o);
  s.add(pow2(m, bs) && z3::ule(m.lit(4096), bs) && aligned(m, region, bs) && region != m.lit(0));
  s.add(z3::ule(region, m.lit(1ULL << 48)) && z3::ule(limit, m.lit(1024)));
  const auto g = rules::decide_memslots(m, region, bs, limit, o.fault);
  const Expr claim = g.size != m.lit(0) && aligned(m, g.size, bs) &&
                     z3::implies(z3::ule(limit, m.lit(1)), g.count == m.lit(1));
  ProofResult r = decide("memslot_geometry",
                         "dynamic memslots; regions up to 256 TiB, limits up to 1024", s, !claim,
                         {{"region_size", region},
                          {"block_size", bs},
                          {"limit", limit},
                          {"memslot_size", g.size},
                          {"memslots", g.count}});
  if (r.outcome == Outcome::Failed) r.trace = memslot_geometry_trace(o);
  return r;
}

// A counterexample to memslot_indices that the reference can run: the geometry QEMU decides for
// two memslots (64 blocks of 16 MiB each, over a region of 65 to 128 blocks, as the
// memslots_kept traces use) and a PLUG whose memslots the fault's memslots_of() gets wrong. The
// trace expects the fault-free outcome, a consistent check; on the mutant a memslot holding a
// plugged block stays unmapped. Empty when no such PLUG exists.
std::string memslot_trace(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr blocks = m.var("region_blocks"), f = m.var("first"), e = m.var("end");
  const Expr per = m.lit(64);
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(per, blocks) && z3::ule(blocks, m.lit(128)));
  s.add(z3::ult(f, e) && z3::ule(e, blocks) && z3::ule(e - f, m.lit(0xffff)));
  const auto clean = rules::memslots_of(m, f, e - f, per);
  const auto faulty = rules::memslots_of(m, f, e - f, per, o.fault);
  s.add(clean.first != faulty.first || clean.end != faulty.end);
  if (s.check() != z3::sat) return {};
  const z3::model model = s.get_model();
  const DeviceOptions d = memslot_trace_device(u64(model, blocks));
  return fmt::format(
      "vmemtrace 1\n# memslot_indices: a PLUG of blocks [{}, {}) with memslots of 64 blocks\n"
      "{}\ninit -> status=0xf\nconsumers memslots=2 -> ok\n"
      "request plug addr={:#x} nb={} -> ack\ncheck -> ok consistent\n",
      u64(model, f), u64(model, e), format_device_line(d, BackingKind::Null, "none"),
      d.addr + u64(model, f) * d.block_size, u64(model, e) - u64(model, f));
}

// Dynamic memslots, second lemma, in the integer model (z3_int_word.h): for every region and
// every non-zero memslot size (memslot_geometry shows the device's is non-zero), the memslots
// memslots_of() gives for a non-empty range inside the region are indices of existing memslots:
// first < end <= memslot_count(). The memslots tile the region: the last one starts inside it
// and together they cover it. With a single memslot (the feature off, or a limit of 0 or 1)
// the memslot is the region and memslot_count() is 1.
ProofResult memslot_indices(const ProofOptions& o) {
  z3::context c;
  Z3IntWord m(c);
  const Expr region = m.var("region_size"), size = m.var("memslot_size"), offset = m.var("offset"),
             length = m.var("size");
  z3::solver s = make_int_solver(c, o);
  for (const Expr& v : {region, size, offset, length})
    s.add(m.in_range(v));
  s.add(region > 0 && size > 0 && length > 0 && offset + length <= region);
  const auto r = rules::memslots_of(m, offset, length, size, o.fault);
  const Expr count = rules::memslot_count(m, region, size);
  const Expr claim = r.first < r.end && r.end <= count && (count - 1) * size < region &&
                     region <= count * size && rules::memslot_count(m, region, region) == 1;
  ProofResult result =
      decide("memslot_indices",
             "dynamic memslots; every region, memslot size and range (integer model)", s, !claim,
             {{"region_size", region},
              {"memslot_size", size},
              {"offset", offset},
              {"size", length},
              {"first", r.first},
              {"end", r.end},
              {"memslots", count}});
  if (result.outcome == Outcome::Failed) result.trace = memslot_trace(o);
  return result;
}

// QEMU's mapping budget, stated in 128-bit arithmetic: refused exactly when the estimate
// mappings + memslots - listeners exceeds a known (non-zero) limit.
ProofResult mapping_budget_exact(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr maps = m.var("listener_mappings"), count = m.var("listener_count"),
             slots = m.var("max_memslots"), limit = m.var("dma_max_mappings");
  z3::solver s = make_solver(c, o);
  s.add(z3::ule(count, maps));  // every listener maps at least one granule
  const Expr code = rules::mapping_budget_exceeded(m, maps, count, slots, limit, o.fault);
  const Expr spec =
      limit != m.lit(0) && z3::ult(wide(limit), wide(maps) + wide(slots) - wide(count));
  ProofResult r = decide("mapping_budget_exact",
                         "VFIO mapping budget (QEMU a74317f636); all inputs", s, code != spec,
                         {{"listener_mappings", maps},
                          {"listener_count", count},
                          {"max_memslots", slots},
                          {"dma_max_mappings", limit}});
  if (r.outcome == Outcome::Failed) r.trace = mapping_budget_trace(o);
  return r;
}

// The bitmap range operations on a window of 1 word (64 blocks) with symbolic contents and a
// symbolic range: masks outside the words the range touches are empty (the device passes only
// those words), set_range makes range_is true and leaves every other bit alone, and
// count_plugged counts exactly the range's plugged blocks.
ProofResult bitmap_window(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  constexpr unsigned kWords = 1;
  const Expr first = m.var("first"), end = m.var("end");
  std::vector<Expr> words, before;
  for (unsigned i = 0; i < kWords; ++i) {
    words.push_back(c.bv_const(fmt::format("word{}", i).c_str(), 64));
    before.push_back(words.back());
  }
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(first, end) && z3::ule(end, m.lit(kWords * 64)));
  const Expr first_word = z3::lshr(first, m.lit(6));
  const Expr last_word = z3::lshr(end - m.lit(1), m.lit(6));
  Expr outside_empty = c.bool_val(true);
  Expr mask_bits = m.lit(0);
  for (unsigned i = 0; i < kWords; ++i) {
    const Expr mask = rules::range_mask(m, i, first, end);
    const Expr outside = z3::ult(m.lit(i), first_word) || z3::ult(last_word, m.lit(i));
    outside_empty = outside_empty && z3::implies(outside, mask == m.lit(0));
    mask_bits = mask_bits + m.popcount(mask);
  }
  const Expr counted = rules::count_plugged(m, std::span<const Expr>(words), 0, first, end);
  Expr naive = m.lit(0);
  for (unsigned i = 0; i < kWords; ++i) {
    for (unsigned bit = 0; bit < 64; ++bit) {
      const Expr in = z3::ule(first, m.lit(i * 64 + bit)) && z3::ult(m.lit(i * 64 + bit), end);
      naive = naive + z3::ite(in, z3::zext(words[i].extract(bit, bit), 63), m.lit(0));
    }
  }
  rules::set_range(m, std::span<Expr>(words), 0, first, end, true);
  Expr others_kept = c.bool_val(true);
  for (unsigned i = 0; i < kWords; ++i) {
    const Expr mask = rules::range_mask(m, i, first, end);
    others_kept = others_kept && ((words[i] & ~mask) == (before[i] & ~mask));
  }
  const Expr now_set = rules::range_is(m, std::span<const Expr>(words), 0, first, end, true);
  // Each part on its own: the conjunction costs the solver more than its parts together.
  return decide_each(
      "bitmap_window", "bitmap range operations; 1 word (64 blocks), symbolic contents", s,
      {outside_empty, mask_bits == end - first, counted == naive, now_set, others_kept},
      {{"first", first}, {"end", end}, {"word0", before[0]}});
}

}  // namespace

const std::vector<Proof>& all_proofs() {
  static const std::vector<Proof> proofs = {
      {"range_check_exact", "DEV-26, DEV-33, DEV-46", range_check_exact},
      {"verdict_order[spec]", "D1",
       [](const ProofOptions& o) { return verdict_order(Profile::Spec, o); }},
      {"verdict_order[qemu]", "D1",
       [](const ProofOptions& o) { return verdict_order(Profile::Qemu, o); }},
      {"verdict_order[qemu-7.2]", "D1",
       [](const ProofOptions& o) { return verdict_order(Profile::Qemu72, o); }},
      {"usable_region_bounds", "DEV-4, DEV-6, DEV-8", usable_region_bounds},
      {"clip_exact", "section clipping", clip_exact},
      {"memslot_geometry", "dynamic memslots", memslot_geometry},
      {"memslot_indices", "dynamic memslots", memslot_indices},
      {"mapping_budget_exact", "VFIO mapping budget", mapping_budget_exact},
      {"bitmap_window", "bitmap range operations", bitmap_window, true},
  };
  static const std::vector<Proof> all = [] {
    std::vector<Proof> v = proofs;
    for (Proof& p : block_invariant_proofs())
      v.push_back(std::move(p));
    for (Proof& p : listener_invariant_proofs())
      v.push_back(std::move(p));
    return v;
  }();
  return all;
}

}  // namespace proofs
VMEM_NAMESPACE_END
