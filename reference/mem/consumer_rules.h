// The decisions of the device's consumers, written once over a WordModel like rules.h
// (decisions D3): clipping a range to a listener's section, the VFIO mapping budget, and the
// dynamic-memslot geometry. The discard manager, the VFIO listener and the memslot map run them
// on uint64_t; the proofs run them on Z3 bit-vectors.
#pragma once

#include "reference/base/word.h"
#include "reference/mem/fault.h"

VMEM_NAMESPACE_BEGIN

namespace rules {

// ---------------------------------------------------------------------------------------------
// Section clipping (QEMU's memory_region_section_intersect_range()).
//
// The intersection of [a, a + a_size) and [b, b + b_size); `size` is 0 when they do not meet.
// Preconditions: neither range wraps around 2^64.
template <WordModel M>
struct Clipped {
  typename M::Word offset;
  typename M::Word size;
};

template <WordModel M>
Clipped<M> clip(const M& m, typename M::Word a, typename M::Word a_size, typename M::Word b,
                typename M::Word b_size, Fault fault = Fault::None) {
  const auto a_end = m.add(a, a_size);
  const auto b_end = m.add(b, b_size);
  const auto start = m.select(m.ult(a, b), b, a);
  const auto end =
      faulty(fault, Fault::ClipEndNotCapped) ? a_end : m.select(m.ult(a_end, b_end), a_end, b_end);
  const auto meets = m.ult(start, end);
  return {m.select(meets, start, a), m.select(meets, m.sub(end, start), m.lit(0))};
}

// ---------------------------------------------------------------------------------------------
// The VFIO mapping budget (QEMU's vfio_ram_discard_register_listener(), since 6.1).
//
// A listener maps one DMA mapping per granule (block) of its section, so that any block can be
// unmapped on its own later; type1 caps the number of mappings per container. QEMU estimates the
// worst case as the mappings of every RamDiscardListener of the container (the new one included)
// plus every memslot that could still appear as a separate mapping, minus the memslots those
// listeners already stand for.

// Mappings a fully populated section needs: its granules, aligned within the address space.
template <WordModel M>
typename M::Word section_mappings(const M& m, typename M::Word start, typename M::Word size,
                                  typename M::Word granularity) {
  const auto mask = m.sub(granularity, m.lit(1));
  const auto first = m.bit_and(start, m.bit_not(mask));
  const auto end = m.add(start, size);
  const auto last = m.select(m.eq(m.bit_and(end, mask), m.lit(0)), end,
                             m.add(m.bit_and(end, m.bit_not(mask)), granularity));
  return m.udiv(m.sub(last, first), granularity);
}

// True when `listener_mappings + max_memslots - listener_count` exceeds the container's limit
// (never when the limit is unknown, i.e. 0, as with iommufd).
template <WordModel M>
typename M::Bool mapping_budget_exceeded(const M& m, typename M::Word listener_mappings,
                                         typename M::Word listener_count,
                                         typename M::Word max_memslots,
                                         typename M::Word dma_max_mappings,
                                         Fault fault = Fault::None) {
  // Every listener maps at least one granule, so listener_mappings >= listener_count and the
  // subtraction goes first; only a true sum past 2^64 can overflow, and that exceeds any limit.
  const auto base = m.select(m.ult(listener_mappings, listener_count), m.lit(0),
                             m.sub(listener_mappings, listener_count));
  // The mutant counts the listeners' mappings alone.
  const auto memslots =
      faulty(fault, Fault::MappingBudgetIgnoresMemslots) ? m.lit(0) : max_memslots;
  const auto overflow = m.add_overflows(base, memslots);
  const auto estimate = m.add(base, memslots);
  const auto known = m.negate(m.eq(dma_max_mappings, m.lit(0)));
  const auto over = faulty(fault, Fault::MappingBudgetOffByOne) ? m.ule(dma_max_mappings, estimate)
                                                                : m.ult(dma_max_mappings, estimate);
  return m.both(known, m.either(overflow, over));
}

// ---------------------------------------------------------------------------------------------
// Dynamic memslots (QEMU 8.2+, virtio_mem_decide_memslots()).
//
// With `limit` memslots allowed, the region is split into memslots of
// max(round_up(region_size / limit, block_size), max(block_size, 1 GiB)) bytes, the last one
// possibly smaller: at most one memslot per GiB, each a multiple of the block size. A limit of 0
// or 1 gives a single memslot covering the region.
inline constexpr uint64_t kMinMemslotSize = 1ULL << 30;

template <WordModel M>
struct MemslotGeometry {
  typename M::Word count;
  typename M::Word size;  // of every memslot but possibly the last
};

// How many memslots of `memslot_size` (non-zero) bytes cover `region_size` bytes:
// ceil(region_size / memslot_size), without computing region_size + memslot_size - 1.
template <WordModel M>
typename M::Word memslot_count(const M& m, typename M::Word region_size,
                               typename M::Word memslot_size) {
  const auto whole = m.udiv(region_size, memslot_size);
  const auto partial = m.negate(m.eq(m.urem(region_size, memslot_size), m.lit(0)));
  return m.add(whole, m.select(partial, m.lit(1), m.lit(0)));
}

template <WordModel M>
MemslotGeometry<M> decide_memslots(const M& m, typename M::Word region_size,
                                   typename M::Word block_size, typename M::Word limit,
                                   Fault fault = Fault::None) {
  const auto single = m.ule(limit, m.lit(1));
  const auto safe_limit = m.select(single, m.lit(1), limit);
  const auto mask = m.sub(block_size, m.lit(1));
  const auto per = m.udiv(region_size, safe_limit);
  // The mutant leaves the share unrounded.
  const auto per_aligned = faulty(fault, Fault::MemslotSizeNotBlockAligned)
                               ? per
                               : m.select(m.eq(m.bit_and(per, mask), m.lit(0)), per,
                                          m.add(m.bit_and(per, m.bit_not(mask)), block_size));
  const auto min_size =
      m.select(m.ult(block_size, m.lit(kMinMemslotSize)), m.lit(kMinMemslotSize), block_size);
  const auto size = m.select(m.ult(per_aligned, min_size), min_size, per_aligned);
  const auto count = memslot_count(m, region_size, size);
  const auto one = m.both(m.negate(single), m.negate(m.ule(count, m.lit(1))));
  return {m.select(one, count, m.lit(1)), m.select(one, size, region_size)};
}

// How many memslots one device may use (QEMU 8.2+, memory_device_memslot_decision_limit()).
// `max_slots` is min(KVM's, vhost's) total, `free_slots` what they have left, `required` the
// memslots memory devices already asked for and `used` how many of those are in use;
// `device_size` this device's size, `area_size` the device-memory area (maxmem - mem) and
// `area_used` what other devices already occupy of it.
inline constexpr uint64_t kSafeMaxMemslots = 509;
inline constexpr uint64_t kSoftMemslotLimit = 256;

template <WordModel M>
typename M::Word memslot_decision_limit(const M& m, typename M::Word max_slots,
                                        typename M::Word free_slots, typename M::Word required,
                                        typename M::Word used, typename M::Word device_size,
                                        typename M::Word area_size, typename M::Word area_used) {
  const auto one = m.lit(1);
  const auto reserved = m.select(m.ult(required, used), m.lit(0), m.sub(required, used));
  const auto too_few = m.either(m.ult(max_slots, m.lit(kSafeMaxMemslots)),
                                m.ule(m.lit(kSoftMemslotLimit), required));
  const auto soft_left = m.select(m.ule(m.lit(kSoftMemslotLimit), required), m.lit(0),
                                  m.sub(m.lit(kSoftMemslotLimit), required));
  const auto free_left =
      m.select(m.ult(free_slots, reserved), m.lit(0), m.sub(free_slots, reserved));
  const auto slots = m.select(m.ult(soft_left, free_left), soft_left, free_left);
  const auto starved = m.either(m.ult(free_slots, reserved), m.ult(slots, one));
  // A device that fills the whole area gets everything; else its share by size.
  const auto available =
      m.select(m.ult(area_size, area_used), m.lit(0), m.sub(area_size, area_used));
  const auto share =
      m.select(m.eq(available, m.lit(0)), one, m.udiv(m.mul(slots, device_size), available));
  const auto by_size = m.select(m.ult(share, one), one, share);
  const auto limit = m.select(m.eq(device_size, area_size), slots, by_size);
  return m.select(m.either(too_few, starved), one, limit);
}

// The memslots [first, end) that a block-aligned range [offset, offset + size) touches.
template <WordModel M>
struct MemslotRange {
  typename M::Word first;
  typename M::Word end;
};

template <WordModel M>
MemslotRange<M> memslots_of(const M& m, typename M::Word offset, typename M::Word size,
                            typename M::Word memslot_size, Fault fault = Fault::None) {
  const auto first = m.udiv(offset, memslot_size);
  // The mutant rounds the end down: the memslot holding the range's last byte is left out.
  if (faulty(fault, Fault::MemslotEndRoundedDown))
    return {first, m.udiv(m.add(offset, size), memslot_size)};
  const auto last_byte = m.sub(m.add(offset, size), m.lit(1));
  return {first, m.add(m.udiv(last_byte, memslot_size), m.lit(1))};
}

}  // namespace rules

VMEM_NAMESPACE_END
