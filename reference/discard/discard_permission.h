// Who may discard guest RAM, and who may not tolerate it (QEMU's ram_block_discard_* counters,
// system/physmem.c).
//
// Discarding memory under a consumer that pinned it (VFIO) silently breaks DMA, so QEMU keeps
// four counters and refuses incompatible combinations, whichever side comes second:
//   required                 uncoordinated discarders (virtio-balloon)
//   coordinated_required     coordinated discarders that tell consumers first (virtio-mem)
//   disabled                 consumers that cannot cope with any discard (non-type1 VFIO, a
//                            consumer that pins a whole region without a listener)
//   uncoordinated_disabled   consumers that cope with coordinated discards only (VFIO type1)
// So virtio-mem and VFIO type1 coexist; virtio-balloon and VFIO do not.
#pragma once

#include <cstdint>

#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

class DiscardPermission {
 public:
  // A discarder arrives. Coordinated (virtio-mem) fails only if discards are disabled outright;
  // uncoordinated (a balloon) also fails if any consumer disabled uncoordinated discards.
  Status require(bool coordinated);
  void release_require(bool coordinated);
  // A consumer arrives. One that copes with coordinated discards (VFIO type1 through a listener)
  // fails only if an uncoordinated discarder exists; one that copes with none fails if any
  // discarder exists.
  Status disable(bool uncoordinated_only);
  void release_disable(bool uncoordinated_only);

  uint32_t required() const { return required_; }
  uint32_t coordinated_required() const { return coordinated_required_; }
  uint32_t disabled() const { return disabled_; }
  uint32_t uncoordinated_disabled() const { return uncoordinated_disabled_; }

 private:
  uint32_t required_ = 0;
  uint32_t coordinated_required_ = 0;
  uint32_t disabled_ = 0;
  uint32_t uncoordinated_disabled_ = 0;
};

VMEM_NAMESPACE_END
