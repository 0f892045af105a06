// The virtio-mem device's decisions, written once over a WordModel (decisions D3).
//
// The device runs these templates on uint64_t (model U64); proofs/ runs the very same templates on
// Z3 bit-vectors. So everything that decides a verdict or a size lives here: range validity, the
// verdict order of each profile, the plug limit, usable-region growth and shrink, and the bitmap
// range operations. Rules are stated in the spec's terms, with the requirement IDs they decide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "reference/base/word.h"
#include "reference/mem/fault.h"
#include "reference/mem/profile.h"
#include "reference/mem/wire.h"

VMEM_NAMESPACE_BEGIN

namespace rules {

template <WordModel M>
using W = typename M::Word;
template <WordModel M>
using B = typename M::Bool;

// ---------------------------------------------------------------------------------------------
// Range validity. Implements: DEV-26, DEV-33, DEV-46.
//
// A request covers [gpa, gpa + nb_blocks * block_size). It is valid when gpa is block-aligned,
// nb_blocks is not 0, the end does not wrap around 2^64, and the whole range lies inside
// [region_addr, region_addr + usable_region_size). A range that ends exactly at the usable end is
// valid. Preconditions (the device's geometry): block_size is a power of two, region_addr and
// usable_region_size are multiples of it, and region_addr + region_size does not wrap.
template <WordModel M>
B<M> valid_range(const M& m, W<M> region_addr, W<M> usable_region_size, W<M> block_size, W<M> gpa,
                 W<M> nb_blocks, Fault fault = Fault::None) {
  const W<M> size = m.mul(nb_blocks, block_size);
  const W<M> end = m.add(gpa, size);
  const W<M> usable_end = m.add(region_addr, usable_region_size);

  const B<M> aligned = m.eq(m.bit_and(gpa, m.sub(block_size, m.lit(1))), m.lit(0));
  B<M> nonempty = m.negate(m.eq(nb_blocks, m.lit(0)));
  if (faulty(fault, Fault::NbBlocksZeroAccepted)) nonempty = m.truth(true);
  B<M> no_wrap =
      m.negate(m.either(m.mul_overflows(nb_blocks, block_size), m.add_overflows(gpa, size)));
  if (faulty(fault, Fault::RangeNoWrapCheck)) no_wrap = m.truth(true);
  const B<M> starts_inside = m.both(m.ule(region_addr, gpa), m.ult(gpa, usable_end));
  B<M> ends_inside = m.ule(end, usable_end);
  if (faulty(fault, Fault::RangeEndOffByOne))
    ends_inside = m.ule(end, m.add(usable_end, block_size));

  return m.both(m.both(aligned, nonempty), m.both(no_wrap, m.both(starts_inside, ends_inside)));
}

// The plug limit: QEMU refuses a PLUG when plugged_size + size > requested_size. That is stricter
// than the spec's prose ("once plugged_size >= requested_size"); see docs/profiles.md.
template <WordModel M>
B<M> exceeds_requested(const M& m, W<M> plugged_size, W<M> size, W<M> requested_size) {
  return m.either(m.add_overflows(plugged_size, size),
                  m.ult(requested_size, m.add(plugged_size, size)));
}

// ---------------------------------------------------------------------------------------------
// Verdict order (decisions D1). The inputs are the facts about one request; `wrong_state` means
// "some covered block is not in the state the request needs" and is only meaningful for a valid
// range. The result is the response code, as a Word.

template <WordModel M>
W<M> plug_verdict(const M& m, Profile profile, B<M> valid, B<M> over_quota, B<M> wrong_state,
                  B<M> busy, Fault fault = Fault::None) {
  const W<M> ack = m.lit(VIRTIO_MEM_RESP_ACK);
  const W<M> err = m.lit(VIRTIO_MEM_RESP_ERROR);
  // Firecracker answers ERROR at the plug limit (a profile difference: GEN-9).
  const W<M> nack =
      faulty(fault, Fault::OverQuotaAnsweredError) ? err : m.lit(VIRTIO_MEM_RESP_NACK);
  const W<M> bsy = m.lit(VIRTIO_MEM_RESP_BUSY);
  const W<M> busy_or_ack = faulty(fault, Fault::PlugIgnoresBusy) ? ack : m.select(busy, bsy, ack);

  if (faulty(fault, Fault::NackBeforeRangeCheck)) {
    return m.select(over_quota, nack,
                    m.select(m.negate(valid), err, m.select(wrong_state, err, busy_or_ack)));
  }
  if (profile == Profile::Spec) {
    // DEV-26, then DEV-27 (a MUST), then the plug limit, then BUSY (DEV-28), then DEV-29.
    return m.select(m.negate(valid), err,
                    m.select(wrong_state, err, m.select(over_quota, nack, busy_or_ack)));
  }
  // QEMU checks the plug limit before the block states: an over-quota PLUG that overlaps plugged
  // blocks gets NACK there (a DEV-27 FAIL in conformance terms, decisions D2).
  return m.select(m.negate(valid), err,
                  m.select(over_quota, nack, m.select(wrong_state, err, busy_or_ack)));
}

// DEV-33, DEV-34, then BUSY (DEV-35), then DEV-36. There is no plug limit for UNPLUG.
template <WordModel M>
W<M> unplug_verdict(const M& m, B<M> valid, B<M> wrong_state, B<M> busy) {
  return m.select(
      m.negate(valid), m.lit(VIRTIO_MEM_RESP_ERROR),
      m.select(wrong_state, m.lit(VIRTIO_MEM_RESP_ERROR),
               m.select(busy, m.lit(VIRTIO_MEM_RESP_BUSY), m.lit(VIRTIO_MEM_RESP_ACK))));
}

// UNPLUG_ALL answers only ACK or BUSY (DEV-40, DEV-41). Upstream QEMU is busy only if something is
// plugged; QEMU 7.2 busy-checks unconditionally.
template <WordModel M>
W<M> unplug_all_verdict(const M& m, Profile profile, B<M> busy, W<M> plugged_size,
                        Fault fault = Fault::None) {
  const bool always_busy =
      profile == Profile::Qemu72 || faulty(fault, Fault::UnplugAllBusyWhenEmpty);
  const B<M> refuses = always_busy ? busy : m.both(busy, m.negate(m.eq(plugged_size, m.lit(0))));
  return m.select(refuses, m.lit(VIRTIO_MEM_RESP_BUSY), m.lit(VIRTIO_MEM_RESP_ACK));
}

// STATE: ERROR for an invalid range (DEV-46), otherwise ACK (DEV-47), never BUSY or NACK.
template <WordModel M>
W<M> state_verdict(const M& m, B<M> valid) {
  return m.select(valid, m.lit(VIRTIO_MEM_RESP_ACK), m.lit(VIRTIO_MEM_RESP_ERROR));
}

// DEV-48: PLUGGED if every block is plugged, UNPLUGGED if none is, MIXED otherwise.
template <WordModel M>
W<M> state_of(const M& m, B<M> all_plugged, B<M> all_unplugged, Fault fault = Fault::None) {
  const W<M> mixed = faulty(fault, Fault::StatePluggedForMixed) ? m.lit(VIRTIO_MEM_STATE_PLUGGED)
                                                                : m.lit(VIRTIO_MEM_STATE_MIXED);
  return m.select(all_plugged, m.lit(VIRTIO_MEM_STATE_PLUGGED),
                  m.select(all_unplugged, m.lit(VIRTIO_MEM_STATE_UNPLUGGED), mixed));
}

// ---------------------------------------------------------------------------------------------
// Usable region (DEV-4, DEV-8, DEV-43).
//
// The usable region grows to cover requested_size plus an extent, so the driver can choose which
// blocks to plug: min(region_size, requested + extent), rounded up to the block size, and 0 when
// nothing is requested. It may only shrink while handling UNPLUG_ALL or at a system reset
// (`can_shrink`). Preconditions: region_size and requested_size are block-aligned,
// requested_size <= region_size.
template <WordModel M>
W<M> round_up(const M& m, W<M> value, W<M> block_size) {
  const W<M> mask = m.sub(block_size, m.lit(1));
  const W<M> down = m.bit_and(value, m.bit_not(mask));
  return m.select(m.eq(down, value), value, m.add(down, block_size));
}

template <WordModel M>
W<M> resized_usable_region(const M& m, W<M> region_size, W<M> block_size, W<M> extent,
                           W<M> requested_size, W<M> current, B<M> can_shrink,
                           Fault fault = Fault::None) {
  const W<M> wanted =
      m.select(m.add_overflows(requested_size, extent), region_size, m.add(requested_size, extent));
  const W<M> capped = m.select(m.ult(region_size, wanted), region_size, wanted);
  const W<M> rounded =
      faulty(fault, Fault::UsableRegionNotRounded) ? capped : round_up(m, capped, block_size);
  W<M> target = m.select(m.eq(requested_size, m.lit(0)), m.lit(0), rounded);
  if (faulty(fault, Fault::UnplugAllUsableBelowRequested)) {
    target = m.select(can_shrink, m.lit(0), target);
  }
  const B<M> keep = m.both(m.ult(target, current), m.negate(can_shrink));
  return m.select(keep, current, target);
}

// ---------------------------------------------------------------------------------------------
// Bitmap range operations. Bit i of word w stands for block 64*w + i; a set bit is a plugged
// block. The operations act on a *window* of words [first_word, first_word + window.size()) and a
// block range [first, end); bits of the range outside the window are not touched, so the caller
// passes the window that covers the range (word_window() below; that it covers is a proved
// lemma). The device passes the few words a request touches; the proofs pass small bitmaps whole.

inline constexpr uint64_t kBitsPerWord = 64;

// The low n bits set, for n in [0, 64].
template <WordModel M>
W<M> ones_below(const M& m, W<M> n) {
  const B<M> full = m.eq(n, m.lit(kBitsPerWord));
  const W<M> safe_shift = m.select(full, m.lit(0), n);
  return m.select(full, m.bit_not(m.lit(0)), m.sub(m.shl(m.lit(1), safe_shift), m.lit(1)));
}

// Where `bit` falls relative to the word starting at `base`, clamped to [0, 64].
template <WordModel M>
W<M> clamp_to_word(const M& m, W<M> bit, W<M> base) {
  const W<M> rel = m.sub(bit, base);
  return m.select(m.ule(bit, base), m.lit(0),
                  m.select(m.ult(rel, m.lit(kBitsPerWord)), rel, m.lit(kBitsPerWord)));
}

// The bits of word `word_index` that belong to the block range [first, end).
template <WordModel M>
W<M> range_mask(const M& m, uint64_t word_index, W<M> first, W<M> end) {
  const W<M> base = m.lit(word_index * kBitsPerWord);
  return m.bit_and(ones_below(m, clamp_to_word(m, end, base)),
                   m.bit_not(ones_below(m, clamp_to_word(m, first, base))));
}

// True when every block of [first, end) inside the window is plugged (or, with `plugged` false,
// unplugged).
template <WordModel M>
B<M> range_is(const M& m, std::span<const W<M>> window, uint64_t first_word, W<M> first, W<M> end,
              bool plugged) {
  B<M> all = m.truth(true);
  for (std::size_t i = 0; i < window.size(); ++i) {
    const W<M> mask = range_mask(m, first_word + i, first, end);
    const W<M> want = plugged ? mask : m.lit(0);
    all = m.both(all, m.eq(m.bit_and(window[i], mask), want));
  }
  return all;
}

// Marks every block of [first, end) inside the window plugged (or unplugged).
template <WordModel M>
void set_range(const M& m, std::span<W<M>> window, uint64_t first_word, W<M> first, W<M> end,
               bool plugged) {
  for (std::size_t i = 0; i < window.size(); ++i) {
    const W<M> mask = range_mask(m, first_word + i, first, end);
    window[i] = plugged ? m.bit_or(window[i], mask) : m.bit_and(window[i], m.bit_not(mask));
  }
}

// Number of plugged blocks of [first, end) inside the window.
template <WordModel M>
W<M> count_plugged(const M& m, std::span<const W<M>> window, uint64_t first_word, W<M> first,
                   W<M> end) {
  W<M> n = m.lit(0);
  for (std::size_t i = 0; i < window.size(); ++i) {
    n = m.add(n, m.popcount(m.bit_and(window[i], range_mask(m, first_word + i, first, end))));
  }
  return n;
}

// The words a non-empty block range [first, end) touches (concrete; the device's window).
struct WordWindow {
  uint64_t first_word = 0;
  uint64_t count = 0;
};
constexpr WordWindow word_window(uint64_t first, uint64_t end) {
  if (end <= first) return {first / kBitsPerWord, 0};
  const uint64_t last_word = (end - 1) / kBitsPerWord;
  return {first / kBitsPerWord, last_word - first / kBitsPerWord + 1};
}

}  // namespace rules

VMEM_NAMESPACE_END
