// Little-endian loads and stores, independent of the host's byte order. Every virtio structure in
// guest memory is little-endian (virtio 1.x); nothing in the reference casts a struct over it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

template <class T>
constexpr T load_le(const uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v = static_cast<T>(v | (T(p[i]) << (8 * i)));
  return v;
}

template <class T>
constexpr void store_le(uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}

VMEM_NAMESPACE_END
