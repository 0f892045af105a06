#include "reference/discard/discard_permission.h"

VMEM_NAMESPACE_BEGIN

Status DiscardPermission::require(bool coordinated) {
  if (coordinated) {
    if (disabled_ != 0) {
      return unexpected(
          Error{"Discarding RAM is disabled: a consumer that cannot cope with "
                "discarded memory (e.g. non-type1 VFIO) is present"});
    }
    ++coordinated_required_;
    return ok();
  }
  if (disabled_ != 0 || uncoordinated_disabled_ != 0) {
    return unexpected(
        Error{"Discarding RAM is disabled: uncoordinated discards (a balloon) "
              "conflict with a consumer that pins memory (VFIO)"});
  }
  ++required_;
  return ok();
}

void DiscardPermission::release_require(bool coordinated) {
  uint32_t& c = coordinated ? coordinated_required_ : required_;
  if (c != 0) --c;
}

Status DiscardPermission::disable(bool uncoordinated_only) {
  if (uncoordinated_only) {
    if (required_ != 0) {
      return unexpected(
          Error{"cannot pin memory: an uncoordinated discarder (a balloon) is "
                "present; coordinated discards (virtio-mem) would be fine"});
    }
    ++uncoordinated_disabled_;
    return ok();
  }
  if (required_ != 0 || coordinated_required_ != 0) {
    return unexpected(
        Error{"cannot pin the whole region: RAM discards are required (virtio-mem "
              "or a balloon); register a RamDiscardListener instead"});
  }
  ++disabled_;
  return ok();
}

void DiscardPermission::release_disable(bool uncoordinated_only) {
  uint32_t& c = uncoordinated_only ? uncoordinated_disabled_ : disabled_;
  if (c != 0) --c;
}

VMEM_NAMESPACE_END
