// The discard manager's bookkeeping, written over a WordModel (decisions D3): block by block,
// what each listener was told is populated and where its DMA mappings begin.
//
// DiscardManager (discard_manager.h) and the VFIO listener (vfio_listener.h) work on sections in
// bytes and on a real type1 container; this is the same bookkeeping stripped to bitmaps in block
// units, with one function per hook the device calls (populate before a PLUG's blocks are marked,
// discard before an UNPLUG's are cleared, discard_all before UNPLUG_ALL clears them) and one per
// registration. Clipping is consumer_rules.h's clip(), the template the manager runs; for the
// block-aligned, non-wrapping sections the manager accepts, clipping block numbers and clipping
// byte offsets give the same blocks.
//
// What it leaves out, and says so: dynamic memslots (MemslotMap, which maps memslots before a
// populate), the VFIO mapping budget (a refused registration is an input here) and the tap of
// ConsumerSet.
//
// Two users: proofs/listener_invariants.cc runs it on Z3 bit-vectors to prove that every
// listener's view stays plugged ∩ its section and that no unmap splits a mapping;
// reference/tests/listener_state_test.cc runs it on uint64_t next to DiscardManager with
// recording and VFIO listeners on random operation sequences, comparing every listener's view
// and mappings after each step, so the two cannot drift apart.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "reference/mem/consumer_rules.h"
#include "reference/mem/fault.h"
#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace rules {

// One registered listener.
template <WordModel M>
struct ListenerView {
  W<M> first;  // its section [first, end), in blocks of the region
  W<M> end;
  std::vector<W<M>> told;       // bit b: block b was announced populated and not discarded since
  std::vector<W<M>> joined;     // bit b: block b lies in the same DMA mapping as block b - 1
  bool double_discard = false;  // takes discards of ranges it never saw populated (VFIO does)
  bool maps = false;            // maps DMA per populate (VFIO): the mapping faults apply
};

// The manager's listeners, most recent first (the order populate() asks them in).
template <WordModel M>
using Listeners = std::vector<ListenerView<M>>;

template <WordModel M>
struct PopulateResult {
  B<M> ok;                  // no listener refused
  std::vector<B<M>> asked;  // listener i was notified (its part was not empty, none refused first)
};

namespace detail {

template <WordModel M>
B<M> empty_range(const M& m, W<M> first, W<M> end) {
  return m.negate(m.ult(first, end));
}

// True when some block of [first, end) is set in `words`.
template <WordModel M>
B<M> meets(const M& m, const std::vector<W<M>>& words, W<M> first, W<M> end) {
  B<M> any = m.truth(false);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const W<M> mask = range_mask(m, i, first, end);
    any = m.either(any, m.negate(m.eq(m.bit_and(words[i], mask), m.lit(0))));
  }
  return any;
}

// Bit `b` of `words` (false past their end).
template <WordModel M>
B<M> bit_at(const M& m, const std::vector<W<M>>& words, W<M> b) {
  return meets(m, words, b, m.add(b, m.lit(1)));
}

// The blocks [first, end) of `words`, set or cleared when `apply`.
template <WordModel M>
void mark(const M& m, std::vector<W<M>>& words, W<M> first, W<M> end, B<M> apply, bool set) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    const W<M> mask = range_mask(m, i, first, end);
    const W<M> changed = set ? m.bit_or(words[i], mask) : m.bit_and(words[i], m.bit_not(mask));
    words[i] = m.select(apply, changed, words[i]);
  }
}

// A discard of [first, end) to one listener. A mapping listener unmaps the range in one call,
// which type1 refuses, changing nothing, when a mapping sticks out of either end; a recording
// listener forgets the range.
template <WordModel M>
void discard_blocks(const M& m, ListenerView<M>& l, W<M> first, W<M> end, B<M> apply) {
  const B<M> splits = m.either(bit_at(m, l.joined, first), bit_at(m, l.joined, end));
  const B<M> done = m.both(apply, m.both(m.negate(empty_range(m, first, end)), m.negate(splits)));
  mark(m, l.told, first, end, done, false);
  mark(m, l.joined, first, end, done, false);
}

// [first, end) ∩ the listener's section, by the manager's clip().
template <WordModel M>
std::pair<W<M>, W<M>> clip_to(const M& m, W<M> s_first, W<M> s_end, W<M> first, W<M> end,
                              Fault fault) {
  const auto c = clip(m, s_first, m.sub(s_end, s_first), first, m.sub(end, first), fault);
  return {c.offset, m.add(c.offset, c.size)};
}

}  // namespace detail

// DiscardManager::populate(): each listener in turn is told its part of the unplugged range
// [first, end); `refuses[i]` says listener i would refuse. On a refusal every listener told
// before it gets a discard of the range clipped to *its own* section. A mapping listener maps its
// part block by block; a mapping already there (EEXIST) or an injected failure makes it unmap the
// part again and refuse.
template <WordModel M>
PopulateResult<M> populate(const M& m, Listeners<M>& ls, W<M> first, W<M> end,
                           const std::vector<B<M>>& refuses, Fault fault = Fault::None) {
  PopulateResult<M> r{m.truth(true), {}};
  for (std::size_t i = 0; i < ls.size(); ++i) {
    ListenerView<M>& l = ls[i];
    const auto [p_first, p_end] = detail::clip_to(m, l.first, l.end, first, end, fault);
    const B<M> asked = m.both(r.ok, m.negate(detail::empty_range(m, p_first, p_end)));
    r.asked.push_back(asked);
    // The mapping mutants: the whole section mapped, or the part mapped as one range.
    const bool whole = l.maps && faulty(fault, Fault::PopulateMapsWholeSection);
    const W<M> s_first = whole ? l.first : p_first;
    const W<M> s_end = whole ? l.end : p_end;
    B<M> refused = m.both(asked, refuses[i]);
    if (l.maps)
      refused = m.either(refused, m.both(asked, detail::meets(m, l.told, s_first, s_end)));
    const B<M> accepted = m.both(asked, m.negate(refused));
    detail::mark(m, l.told, s_first, s_end, accepted, true);
    if (l.maps && faulty(fault, Fault::PopulateMapsOneRange)) {
      detail::mark(m, l.joined, m.add(s_first, m.lit(1)), s_end, accepted, true);
    }
    if (l.maps) detail::discard_blocks(m, l, s_first, s_end, refused);
    // The rollback.
    for (std::size_t j = 0; j < i; ++j) {
      if (faulty(fault, Fault::RollbackSkipsFirstListener) && j == 0) continue;
      const ListenerView<M>& own =
          faulty(fault, Fault::RollbackClippedToFailingSection) ? l : ls[j];
      const auto [u_first, u_end] = detail::clip_to(m, own.first, own.end, first, end, fault);
      detail::discard_blocks(m, ls[j], u_first, u_end, refused);
    }
    r.ok = m.both(r.ok, m.negate(refused));
  }
  return r;
}

// DiscardManager::discard(): each listener forgets its part of [first, end).
template <WordModel M>
void discard(const M& m, Listeners<M>& ls, W<M> first, W<M> end, Fault fault = Fault::None) {
  for (ListenerView<M>& l : ls) {
    const auto [p_first, p_end] = detail::clip_to(m, l.first, l.end, first, end, fault);
    detail::discard_blocks(m, l, p_first, p_end, m.truth(true));
  }
}

namespace detail {

// What a listener hears, when `apply`, as everything it may hold goes: one discard of its whole
// section if it takes double discards, else a discard per plugged run (which forgets exactly the
// plugged blocks of its section).
template <WordModel M>
void discard_section(const M& m, ListenerView<M>& l, const std::vector<W<M>>& plugged, B<M> apply) {
  if (l.double_discard) {
    discard_blocks(m, l, l.first, l.end, apply);
    return;
  }
  for (std::size_t i = 0; i < l.told.size(); ++i) {
    const W<M> gone =
        m.select(apply, m.bit_and(plugged[i], range_mask(m, i, l.first, l.end)), m.lit(0));
    l.told[i] = m.bit_and(l.told[i], m.bit_not(gone));
    l.joined[i] = m.bit_and(l.joined[i], m.bit_not(gone));
  }
}

}  // namespace detail

// DiscardManager::discard_all(), with the bitmap `plugged` still set.
template <WordModel M>
void discard_all(const M& m, Listeners<M>& ls, const std::vector<W<M>>& plugged) {
  for (ListenerView<M>& l : ls)
    detail::discard_section(m, l, plugged, m.truth(true));
}

// DiscardManager::register_listener() for a valid section: the plugged blocks of the section are
// replayed to `l` (whose views start empty), run by run. `refuses` says it refuses the first
// replayed run; then it holds nothing and is not registered. Returns whether it was: the caller
// then adds `l` at the front of the listeners, as the manager does.
template <WordModel M>
B<M> replay_to(const M& m, ListenerView<M>& l, const std::vector<W<M>>& plugged, B<M> refuses,
               Fault fault = Fault::None) {
  B<M> registered = m.negate(m.both(detail::meets(m, plugged, l.first, l.end), refuses));
  W<M> carry = m.lit(0);  // the previous word's top bit, for the one-range mutant
  for (std::size_t i = 0; i < l.told.size(); ++i) {
    const W<M> seen = m.bit_and(plugged[i], range_mask(m, i, l.first, l.end));
    l.told[i] = m.select(registered, seen, l.told[i]);
    if (l.maps && faulty(fault, Fault::PopulateMapsOneRange)) {
      // A plugged run maps as one range: every block whose predecessor is in the run joins it.
      const W<M> before = m.bit_or(m.shl(seen, m.lit(1)), carry);
      l.joined[i] = m.select(registered, m.bit_and(seen, before), l.joined[i]);
      carry = m.lshr(seen, m.lit(kBitsPerWord - 1));
    }
  }
  return registered;
}

// DiscardManager::unregister_listener(): the listener at `index` hears a discard of what it
// holds, then leaves. Returns it as it leaves, with what it still holds.
template <WordModel M>
ListenerView<M> unregister_listener(const M& m, Listeners<M>& ls, std::size_t index,
                                    const std::vector<W<M>>& plugged, Fault fault = Fault::None) {
  ListenerView<M> l = std::move(ls[index]);
  ls.erase(ls.begin() + static_cast<std::ptrdiff_t>(index));
  // The manager skips the discard when nothing is plugged (the listener then holds nothing).
  const B<M> any = detail::meets(m, plugged, m.lit(0), m.lit(plugged.size() * kBitsPerWord));
  if (!faulty(fault, Fault::UnregisterKeepsMappings)) detail::discard_section(m, l, plugged, any);
  return l;
}

}  // namespace rules

VMEM_NAMESPACE_END
