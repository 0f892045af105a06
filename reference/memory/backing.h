// Host memory behind one guest-physical region.
//
// An anonymous backing is a private MAP_NORESERVE mapping: reserving 1 TiB costs nothing until a
// page is written. A shared backing is a memfd mapped MAP_SHARED, as QEMU's memory-backend-memfd.
// Discarding returns memory to the host: MADV_DONTNEED for anonymous memory, a punched hole for
// a memfd (MADV_DONTNEED frees nothing there). A null backing has no memory at all: it exists so
// benchmarks and fuzzers can run the device without paying for system calls.
//
// Residency follows decisions D10: a page counts as resident only if the region holds a private
// page for it; the shared zero page that a CPU read of a never-written page maps does not count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

enum class BackingKind : uint8_t { Anonymous, Shared, Null };

const char* to_string(BackingKind k);
// The inverse of to_string: "anonymous", "shared" or "null".
std::optional<BackingKind> backing_from_name(std::string_view name);

class Backing {
 public:
  static Result<Backing> create(BackingKind kind, uint64_t size);

  Backing(Backing&& other) noexcept;
  Backing& operator=(Backing&& other) noexcept;
  Backing(const Backing&) = delete;
  Backing& operator=(const Backing&) = delete;
  ~Backing();

  BackingKind kind() const { return kind_; }
  uint64_t size() const { return size_; }
  // nullptr for a null backing.
  uint8_t* data() const { return data_; }

  // Frees the host memory of [offset, offset + size). The next read sees zeroes. A no-op on a
  // null backing. Fails only if the kernel refuses.
  Status discard(uint64_t offset, uint64_t size);

  // Huge pages would make a discard of one small block free nothing: below the THP size they
  // are turned off for this mapping (decisions D10).
  void advise_block_size(uint64_t block_size);

  // Bytes of [offset, offset + size) that hold a private page, from /proc/self/pagemap (or, if
  // that is unreadable, mincore). Page-granular; a null backing has none.
  Result<uint64_t> resident_bytes(uint64_t offset, uint64_t size) const;
  // The same for the whole backing, cheaply: smaps "Anonymous" for anonymous memory, allocated
  // blocks of the memfd for a shared backing.
  Result<uint64_t> resident_bytes_total() const;

 private:
  Backing(BackingKind kind, uint64_t size, uint8_t* data, int fd)
      : kind_(kind), size_(size), data_(data), fd_(fd) {}
  void release();

  BackingKind kind_;
  uint64_t size_;
  uint8_t* data_;
  int fd_;  // memfd of a shared backing, else -1
};

uint64_t host_page_size();
// The transparent huge page size, from sysfs; 2 MiB when the kernel does not say.
uint64_t thp_size();

VMEM_NAMESPACE_END
