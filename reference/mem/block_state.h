// The block-state machine of a virtio-mem device, written over a WordModel (decisions D3).
//
// VirtioMemDevice runs these rules with its locks, hooks, memory and notifications around them;
// this is the same machine with all of that stripped: the bitmap, plugged_size, requested_size and
// usable_region_size, and one function per transition (PLUG, UNPLUG, UNPLUG_ALL, STATE, host
// resize, device reset, system reset, S3 wake-up). What the host contributes to a step and the
// request does not decide (a busy window, a refused populate, a failed discard) is an input.
//
// Two users: proofs/ runs it on Z3 bit-vectors to prove the device's invariants inductive, and
// reference/tests/block_state_test.cc runs it on uint64_t next to the device on random operation
// sequences, comparing every verdict and every state word, so the two cannot drift apart. Every
// fault of the catalog that changes a transition's block state changes it here too, and only
// through the same helpers the device calls (size_after_unplug(), usable_after_host_resize(), ...).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace rules {

// ---------------------------------------------------------------------------------------------
// The helpers the device itself calls, so a fault in them is a fault of both.

// DEV-30: an ACKed PLUG grows plugged_size by the request's size.
template <WordModel M>
W<M> size_after_plug(const M& m, W<M> plugged_size, W<M> size) {
  return m.add(plugged_size, size);
}

// A PLUG whose populate the host refused answers BUSY and leaves plugged_size as it was.
template <WordModel M>
W<M> size_after_refused_plug(const M& m, W<M> plugged_size, W<M> size, Fault fault) {
  return faulty(fault, Fault::PlugSizeNotRolledBack) ? m.add(plugged_size, size) : plugged_size;
}

// DEV-37: an ACKed UNPLUG shrinks plugged_size by the request's size.
template <WordModel M>
W<M> size_after_unplug(const M& m, W<M> plugged_size, W<M> size, Fault fault) {
  return faulty(fault, Fault::UnplugPluggedSizeStale) ? plugged_size : m.sub(plugged_size, size);
}

// DEV-8: a host resize grows the usable region, never shrinks it.
template <WordModel M>
W<M> usable_after_host_resize(const M& m, W<M> region_size, W<M> block_size, W<M> extent,
                              W<M> requested_size, W<M> current, Fault fault) {
  return resized_usable_region(m, region_size, block_size, extent, requested_size, current,
                               m.truth(faulty(fault, Fault::ResizeShrinksUsable)), fault);
}

// The host may set requested_size to a block-aligned size up to the region's.
template <WordModel M>
B<M> host_resize_allowed(const M& m, W<M> region_size, W<M> block_size, W<M> size, Fault fault) {
  const B<M> aligned = m.eq(m.bit_and(size, m.sub(block_size, m.lit(1))), m.lit(0));
  const B<M> fits =
      faulty(fault, Fault::HostResizeBeyondRegion) ? m.truth(true) : m.ule(size, region_size);
  return m.both(aligned, fits);
}

// ---------------------------------------------------------------------------------------------
// The machine.

template <WordModel M>
struct Geometry {
  W<M> addr;
  W<M> region_size;
  W<M> block_size;
  W<M> extent;  // the usable region's extent beyond requested_size (DEV-4)
  Profile profile = Profile::Spec;
};

// The state a transition reads and writes. `words` has a concrete length: bit i of word w is block
// 64 * w + i of the region.
template <WordModel M>
struct BlockState {
  std::vector<W<M>> words;
  W<M> plugged_size;
  W<M> requested_size;
  W<M> usable_region_size;
};

// The host's part of a step.
template <WordModel M>
struct HostInput {
  B<M> busy;         // inside a busy window (DEV-28, DEV-35, DEV-41)
  B<M> populate_ok;  // every listener accepted the populate of a PLUG
  B<M> discard_ok;   // the memory backend discarded what an unplug gives back
};

template <WordModel M>
struct StepResult {
  W<M> response;  // a VIRTIO_MEM_RESP_* code; for STATE with ACK, `state` holds the answer
  W<M> state;
};

// The block range [first, end) of a request at gpa; only meaningful for a valid one.
template <WordModel M>
std::pair<W<M>, W<M>> block_range(const M& m, const Geometry<M>& g, W<M> gpa, W<M> nb_blocks) {
  const W<M> first = m.udiv(m.sub(gpa, g.addr), g.block_size);
  return {first, m.add(first, nb_blocks)};
}

// What a PLUG or UNPLUG of nb_blocks at gpa covers: whether the range is valid (DEV-26, DEV-33),
// its size in bytes, and its blocks [first, end).
template <WordModel M>
struct RequestRange {
  B<M> valid;
  W<M> size;
  W<M> first;
  W<M> end;
};

template <WordModel M>
RequestRange<M> request_range(const M& m, const Geometry<M>& g, const BlockState<M>& s, W<M> gpa,
                              W<M> nb_blocks, Fault fault) {
  const auto [first, end] = block_range(m, g, gpa, nb_blocks);
  return {valid_range(m, g.addr, s.usable_region_size, g.block_size, gpa, nb_blocks, fault),
          m.mul(nb_blocks, g.block_size), first, end};
}

namespace detail {

template <WordModel M>
B<M> anything_plugged(const M& m, const BlockState<M>& s) {
  B<M> any = m.truth(false);
  for (const W<M>& w : s.words)
    any = m.either(any, m.negate(m.eq(w, m.lit(0))));
  return any;
}

template <WordModel M>
void keep_if(const M& m, B<M> apply, std::vector<W<M>>& now, const std::vector<W<M>>& then) {
  for (std::size_t i = 0; i < now.size(); ++i)
    now[i] = m.select(apply, now[i], then[i]);
}

}  // namespace detail

// UNPLUG_ALL's work, also run by the resets: give back every block and let the usable region
// shrink (DEV-43). With `check_busy`, a busy device with something plugged (qemu-7.2: any busy
// device) keeps its blocks. A failed discard changes nothing. Returns whether it ran.
template <WordModel M>
B<M> unplug_everything(const M& m, const Geometry<M>& g, BlockState<M>& s, const HostInput<M>& host,
                       bool check_busy, Fault fault) {
  const bool qemu72 = g.profile == Profile::Qemu72;
  const B<M> any = detail::anything_plugged(m, s);
  const B<M> refused =
      check_busy ? m.both(host.busy, qemu72 ? m.truth(true) : any) : m.truth(false);
  // QEMU 7.2 discards the whole backend even with nothing plugged.
  const B<M> discards = qemu72 ? m.truth(true) : any;
  const B<M> runs = m.both(m.negate(refused), m.either(m.negate(discards), host.discard_ok));
  for (W<M>& w : s.words)
    w = m.select(runs, m.lit(0), w);
  s.plugged_size = m.select(runs, m.lit(0), s.plugged_size);
  s.usable_region_size =
      m.select(runs,
               resized_usable_region(m, g.region_size, g.block_size, g.extent, s.requested_size,
                                     s.usable_region_size, m.truth(true), fault),
               s.usable_region_size);
  return runs;
}

// PLUG (DEV-26..DEV-32). A refused populate answers BUSY and leaves the state as it was.
template <WordModel M>
StepResult<M> plug(const M& m, const Geometry<M>& g, BlockState<M>& s, W<M> gpa, W<M> nb_blocks,
                   const HostInput<M>& host, Fault fault = Fault::None) {
  const auto [valid, size, first, end] = request_range(m, g, s, gpa, nb_blocks, fault);
  B<M> wrong_state = m.negate(range_is(m, std::span<const W<M>>(s.words), 0, first, end, false));
  if (faulty(fault, Fault::PlugStateCheckSkipped)) wrong_state = m.truth(false);
  const B<M> over_quota = exceeds_requested(m, s.plugged_size, size, s.requested_size);
  const W<M> verdict = plug_verdict(m, g.profile, valid, over_quota, wrong_state, host.busy, fault);
  const B<M> acked = m.eq(verdict, m.lit(VIRTIO_MEM_RESP_ACK));
  const B<M> populated = m.both(acked, host.populate_ok);
  const B<M> refused = m.both(acked, m.negate(host.populate_ok));

  std::vector<W<M>> plugged = s.words;
  set_range(m, std::span<W<M>>(plugged), 0, first, end, true);
  const B<M> marks = faulty(fault, Fault::PlugBitmapKeptOnRefusal) ? acked : populated;
  detail::keep_if(m, marks, plugged, s.words);
  s.words = std::move(plugged);
  s.plugged_size = m.select(
      populated, size_after_plug(m, s.plugged_size, size),
      m.select(refused, size_after_refused_plug(m, s.plugged_size, size, fault), s.plugged_size));
  return {m.select(refused, m.lit(VIRTIO_MEM_RESP_BUSY), verdict), m.lit(0)};
}

// UNPLUG (DEV-33..DEV-39). A failed discard answers BUSY and leaves the state as it was.
template <WordModel M>
StepResult<M> unplug(const M& m, const Geometry<M>& g, BlockState<M>& s, W<M> gpa, W<M> nb_blocks,
                     const HostInput<M>& host, Fault fault = Fault::None) {
  const auto [valid, size, first, end] = request_range(m, g, s, gpa, nb_blocks, fault);
  // Blocks past the bitmap (reachable only through a faulty range check) are not plugged.
  const B<M> past_end = m.ult(m.lit(s.words.size() * kBitsPerWord), end);
  B<M> wrong_state = m.either(
      past_end, m.negate(range_is(m, std::span<const W<M>>(s.words), 0, first, end, true)));
  if (faulty(fault, Fault::UnplugStateCheckSkipped)) wrong_state = m.truth(false);
  const W<M> verdict = unplug_verdict(m, valid, wrong_state, host.busy);
  const B<M> acked = m.eq(verdict, m.lit(VIRTIO_MEM_RESP_ACK));
  const B<M> discarded = faulty(fault, Fault::UnplugSkipsDiscard) ? m.truth(true) : host.discard_ok;
  const B<M> done = m.both(acked, discarded);

  std::vector<W<M>> unplugged = s.words;
  set_range(m, std::span<W<M>>(unplugged), 0, first, end, false);
  detail::keep_if(m, done, unplugged, s.words);
  s.words = std::move(unplugged);
  s.plugged_size =
      m.select(done, size_after_unplug(m, s.plugged_size, size, fault), s.plugged_size);
  return {m.select(m.both(acked, m.negate(done)), m.lit(VIRTIO_MEM_RESP_BUSY), verdict), m.lit(0)};
}

// UNPLUG_ALL (DEV-40..DEV-43).
template <WordModel M>
StepResult<M> unplug_all(const M& m, const Geometry<M>& g, BlockState<M>& s,
                         const HostInput<M>& host, Fault fault = Fault::None) {
  const W<M> verdict = unplug_all_verdict(m, g.profile, host.busy, s.plugged_size, fault);
  const B<M> acked = m.eq(verdict, m.lit(VIRTIO_MEM_RESP_ACK));
  BlockState<M> after = s;
  const B<M> ran = unplug_everything(m, g, after, host, /*check_busy=*/false, fault);
  const B<M> done = m.both(acked, ran);
  detail::keep_if(m, done, after.words, s.words);
  s.words = std::move(after.words);
  s.plugged_size = m.select(done, after.plugged_size, s.plugged_size);
  s.usable_region_size = m.select(done, after.usable_region_size, s.usable_region_size);
  return {m.select(m.both(acked, m.negate(ran)), m.lit(VIRTIO_MEM_RESP_BUSY), verdict), m.lit(0)};
}

// STATE (DEV-44..DEV-48) changes nothing.
template <WordModel M>
StepResult<M> state(const M& m, const Geometry<M>& g, const BlockState<M>& s, W<M> gpa,
                    W<M> nb_blocks, Fault fault = Fault::None) {
  const B<M> valid =
      m.either(valid_range(m, g.addr, s.usable_region_size, g.block_size, gpa, nb_blocks, fault),
               m.truth(faulty(fault, Fault::StateRangeCheckIgnored)));
  const auto [first, end] = block_range(m, g, gpa, nb_blocks);
  const std::span<const W<M>> words(s.words);
  const W<M> st = state_of(m, range_is(m, words, 0, first, end, true),
                           range_is(m, words, 0, first, end, false), fault);
  // An empty range (accepted only by a faulty range check) holds no plugged block.
  return {state_verdict(m, valid),
          m.select(m.eq(nb_blocks, m.lit(0)), m.lit(VIRTIO_MEM_STATE_UNPLUGGED), st)};
}

// The host sets requested_size (DEV-8, DEV-9). Returns whether the request was accepted.
template <WordModel M>
B<M> host_resize(const M& m, const Geometry<M>& g, BlockState<M>& s, W<M> size,
                 Fault fault = Fault::None) {
  const B<M> allowed = host_resize_allowed(m, g.region_size, g.block_size, size, fault);
  const B<M> changed = m.both(allowed, m.negate(m.eq(size, s.requested_size)));
  const W<M> usable = usable_after_host_resize(m, g.region_size, g.block_size, g.extent, size,
                                               s.usable_region_size, fault);
  s.requested_size = m.select(allowed, size, s.requested_size);
  s.usable_region_size = m.select(changed, usable, s.usable_region_size);
  return allowed;
}

// A device reset leaves every block as it was (DEV-13, DEV-14). Returns the host's inputs as the
// steps after it see them: the mutant that unplugs here also ends the busy window.
template <WordModel M>
HostInput<M> device_reset(const M& m, const Geometry<M>& g, BlockState<M>& s,
                          const HostInput<M>& host, Fault fault = Fault::None) {
  if (!faulty(fault, Fault::DeviceResetUnplugs)) return host;
  const HostInput<M> calm{m.truth(false), host.populate_ok, host.discard_ok};
  (void)unplug_everything(m, g, s, calm, /*check_busy=*/true, fault);
  return calm;
}

// A system reset: a device reset, then every block unplugged (DEV-22) unless busy.
template <WordModel M>
void system_reset(const M& m, const Geometry<M>& g, BlockState<M>& s, const HostInput<M>& host,
                  Fault fault = Fault::None) {
  const HostInput<M> after_reset = device_reset(m, g, s, host, fault);
  if (!faulty(fault, Fault::SystemResetKeepsBlocks)) {
    (void)unplug_everything(m, g, s, after_reset, /*check_busy=*/true, fault);
  }
}

// The reset on S3 wake-up: blocks stay plugged (DEV-23), except in qemu-7.2, whose unplug-all
// hook runs on every reset.
template <WordModel M>
void wakeup_reset(const M& m, const Geometry<M>& g, BlockState<M>& s, const HostInput<M>& host,
                  Fault fault = Fault::None) {
  const HostInput<M> after_reset = device_reset(m, g, s, host, fault);
  if (g.profile == Profile::Qemu72 || faulty(fault, Fault::WakeupUnplugs)) {
    (void)unplug_everything(m, g, s, after_reset, /*check_busy=*/true, fault);
  }
}

}  // namespace rules

VMEM_NAMESPACE_END
