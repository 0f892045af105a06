// The dynamic-memslot bookkeeping of MemslotMap (memslot_map.h), written over a WordModel
// (decisions D3): which memslots of the device region are mapped, as the hooks around a PLUG, an
// UNPLUG and UNPLUG_ALL change it.
//
// MemslotMap works in bytes and tells its memory listeners; this is the same bookkeeping in block
// units, with the memory listeners' answers as inputs. It runs consumer_rules.h's memslots_of(),
// the template MemslotMap runs; block offsets, sizes and memslot sizes are all multiples of the
// block size, so the memslot indices come out the same. Which sections VFIO registers on a mapped
// memslot is listener_state.h's business, not this file's.
//
// Two users: proofs/listener_invariants.cc proves on Z3 bit-vectors that a memslot is mapped
// exactly when it holds a plugged block; reference/tests/memslot_state_test.cc runs it next to
// MemslotMap on random operation sequences.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "reference/mem/consumer_rules.h"
#include "reference/mem/fault.h"
#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace rules {

template <WordModel M>
struct MemslotView {
  W<M> size;                 // blocks per memslot (the last may be cut by the region's end)
  W<M> region;               // blocks in the region
  std::vector<B<M>> mapped;  // one per memslot
};

namespace detail {

// Memslot i's blocks: [i * size, min((i + 1) * size, region)).
template <WordModel M>
std::pair<W<M>, W<M>> memslot_blocks(const M& m, const MemslotView<M>& s, std::size_t i) {
  const W<M> first = m.mul(m.lit(i), s.size);
  const W<M> end = m.add(first, s.size);
  return {first, m.select(m.ult(s.region, end), s.region, end)};
}

template <WordModel M>
B<M> in(const M& m, const MemslotRange<M>& r, std::size_t i) {
  return m.both(m.ule(r.first, m.lit(i)), m.ult(m.lit(i), r.end));
}

}  // namespace detail

// MemslotMap::activate(), before a populate of [first, end): maps every memslot the range
// touches that is not mapped; `refuses[i]` says a memory listener refuses memslot i. On a
// refusal the memslots this call mapped are unmapped again. Returns whether all were mapped.
template <WordModel M>
B<M> activate(const M& m, MemslotView<M>& s, W<M> first, W<M> end, const std::vector<B<M>>& refuses,
              Fault fault = Fault::None) {
  const MemslotRange<M> r = memslots_of(m, first, m.sub(end, first), s.size, fault);
  B<M> ok = m.truth(true);
  std::vector<B<M>> now(s.mapped.size(), m.truth(false));
  for (std::size_t i = 0; i < s.mapped.size(); ++i) {
    const B<M> needed = m.both(ok, m.both(detail::in(m, r, i), m.negate(s.mapped[i])));
    ok = m.both(ok, m.negate(m.both(needed, refuses[i])));
    now[i] = m.both(needed, m.negate(refuses[i]));
    s.mapped[i] = m.either(s.mapped[i], now[i]);
  }
  for (std::size_t i = 0; i < s.mapped.size(); ++i)
    s.mapped[i] = m.both(s.mapped[i], m.either(ok, m.negate(now[i])));
  return ok;
}

// MemslotMap::deactivate_unplugged(), after the bitmap `plugged` shows [first, end) unplugged
// (or a PLUG of it refused): unmaps each memslot the range touches that holds no plugged block.
template <WordModel M>
void deactivate_unplugged(const M& m, MemslotView<M>& s, W<M> first, W<M> end,
                          const std::vector<W<M>>& plugged, Fault fault = Fault::None) {
  const MemslotRange<M> r = memslots_of(m, first, m.sub(end, first), s.size);
  for (std::size_t i = 0; i < s.mapped.size(); ++i) {
    const auto [m_first, m_end] = detail::memslot_blocks(m, s, i);
    B<M> empty = range_is(m, std::span<const W<M>>(plugged), 0, m_first, m_end, false);
    if (faulty(fault, Fault::MemslotDeactivatedWhilePlugged)) empty = m.truth(true);
    s.mapped[i] = m.both(s.mapped[i], m.negate(m.both(detail::in(m, r, i), empty)));
  }
}

}  // namespace rules

VMEM_NAMESPACE_END
