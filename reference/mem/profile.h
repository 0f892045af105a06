// Behaviour profiles of the reference device (decisions D1). docs/profiles.md lists every
// difference and where each comes from.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

enum class Profile : uint8_t {
  Spec,    // the spec where it decides; current upstream QEMU where it is silent (the default)
  Qemu,    // current upstream QEMU
  Qemu72,  // Debian bookworm's QEMU 7.2
};

constexpr std::string_view profile_name(Profile p) {
  switch (p) {
    case Profile::Spec:
      return "spec";
    case Profile::Qemu:
      return "qemu";
    case Profile::Qemu72:
      return "qemu-7.2";
  }
  return "?";
}

constexpr std::optional<Profile> profile_from_name(std::string_view s) {
  if (s == "spec") return Profile::Spec;
  if (s == "qemu") return Profile::Qemu;
  if (s == "qemu-7.2") return Profile::Qemu72;
  return std::nullopt;
}

VMEM_NAMESPACE_END
