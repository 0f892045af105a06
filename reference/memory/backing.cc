#include "reference/memory/backing.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

VMEM_NAMESPACE_BEGIN

namespace {

Error errno_error(const char* what) {
  return Error{fmt::format("{}: {}", what, std::strerror(errno))};
}

// /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPagemapPresent = 1ULL << 63;
constexpr uint64_t kPagemapFile = 1ULL << 61;  // file page or shared anonymous
constexpr uint64_t kPagemapExclusive = 1ULL << 56;

}  // namespace

const char* to_string(BackingKind k) {
  switch (k) {
    case BackingKind::Anonymous:
      return "anonymous";
    case BackingKind::Shared:
      return "shared";
    case BackingKind::Null:
      return "null";
  }
  return "?";
}

std::optional<BackingKind> backing_from_name(std::string_view name) {
  for (BackingKind k : {BackingKind::Anonymous, BackingKind::Shared, BackingKind::Null}) {
    if (name == to_string(k)) return k;
  }
  return std::nullopt;
}

uint64_t host_page_size() {
  return static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t thp_size() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
  uint64_t v = 0;
  if (f >> v && v != 0) return v;
  return 2ULL << 20;
}

Result<Backing> Backing::create(BackingKind kind, uint64_t size) {
  if (kind == BackingKind::Null || size == 0) return Backing(kind, size, nullptr, -1);
  if (size % host_page_size() != 0) {
    return unexpected(
        Error{fmt::format("backing size {:#x} is not a multiple of the page size", size)});
  }
  int fd = -1;
  if (kind == BackingKind::Shared) {
    fd = memfd_create("vmem-backing", MFD_CLOEXEC);
    if (fd < 0) return unexpected(errno_error("memfd_create"));
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      Error e = errno_error("ftruncate");
      close(fd);
      return unexpected(e);
    }
  }
  // Reserve a guard page on each side first: the kernel then never merges this mapping with a
  // neighbour, so per-mapping accounting (smaps) describes exactly this backing.
  const uint64_t guard = host_page_size();
  void* reserved = mmap(nullptr, size + 2 * guard, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) {
    Error e = errno_error(fmt::format("mmap of {:#x} bytes", size).c_str());
    if (fd >= 0) close(fd);
    return unexpected(e);
  }
  uint8_t* base = static_cast<uint8_t*>(reserved) + guard;
  const int flags = MAP_FIXED | MAP_NORESERVE |
                    (kind == BackingKind::Shared ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS);
  void* p = mmap(base, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) {
    Error e = errno_error("mmap(MAP_FIXED)");
    munmap(reserved, size + 2 * guard);
    if (fd >= 0) close(fd);
    return unexpected(e);
  }
  // A forked child (a VMM under test) must not share or copy guest memory.
  (void)madvise(p, size, MADV_DONTFORK);
  return Backing(kind, size, static_cast<uint8_t*>(p), fd);
}

Backing::Backing(Backing&& o) noexcept
    : kind_(o.kind_), size_(o.size_), data_(o.data_), fd_(o.fd_) {
  o.data_ = nullptr;
  o.fd_ = -1;
  o.size_ = 0;
}

Backing& Backing::operator=(Backing&& o) noexcept {
  if (this != &o) {
    release();
    kind_ = o.kind_;
    size_ = o.size_;
    data_ = o.data_;
    fd_ = o.fd_;
    o.data_ = nullptr;
    o.fd_ = -1;
    o.size_ = 0;
  }
  return *this;
}

Backing::~Backing() {
  release();
}

void Backing::release() {
  if (data_ != nullptr) munmap(data_ - host_page_size(), size_ + 2 * host_page_size());
  if (fd_ >= 0) close(fd_);
  data_ = nullptr;
  fd_ = -1;
}

Status Backing::discard(uint64_t offset, uint64_t size) {
  if (data_ == nullptr || size == 0) return ok();
  if (offset > size_ || size > size_ - offset) {
    return unexpected(Error{
        fmt::format("discard [{:#x}, +{:#x}) outside a {:#x}-byte backing", offset, size, size_)});
  }
  if (kind_ == BackingKind::Shared) {
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(size)) != 0) {
      return unexpected(errno_error("fallocate(PUNCH_HOLE)"));
    }
    return ok();
  }
  if (madvise(data_ + offset, size, MADV_DONTNEED) != 0)
    return unexpected(errno_error("madvise(DONTNEED)"));
  return ok();
}

void Backing::advise_block_size(uint64_t block_size) {
  if (data_ != nullptr && kind_ == BackingKind::Anonymous && block_size < thp_size()) {
    (void)madvise(data_, size_, MADV_NOHUGEPAGE);
  }
}

Result<uint64_t> Backing::resident_bytes(uint64_t offset, uint64_t size) const {
  if (data_ == nullptr || size == 0) return uint64_t{0};
  if (offset > size_ || size > size_ - offset) {
    return unexpected(Error{"resident_bytes: range outside the backing"});
  }
  const uint64_t page = host_page_size();
  const uint64_t first = reinterpret_cast<uintptr_t>(data_ + offset) / page;
  const uint64_t last = (reinterpret_cast<uintptr_t>(data_ + offset + size) + page - 1) / page;
  uint64_t resident = 0;

  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::vector<uint64_t> entries(4096);
    bool failed = false;
    for (uint64_t p = first; p < last && !failed;) {
      const uint64_t n = std::min<uint64_t>(entries.size(), last - p);
      const ssize_t got = pread(fd, entries.data(), n * 8, static_cast<off_t>(p * 8));
      if (got != static_cast<ssize_t>(n * 8)) {
        failed = true;
        break;
      }
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t e = entries[i];
        // A private page is mapped exclusively; a memfd page is a file page. The shared zero
        // page is neither.
        if ((e & kPagemapPresent) && (e & (kPagemapExclusive | kPagemapFile))) resident += page;
      }
      p += n;
    }
    close(fd);
    if (!failed) return resident;
    resident = 0;
  }

  // Fallback: mincore counts the zero page too, so callers re-discard what they read (D10).
  std::vector<unsigned char> vec(last - first);
  uint8_t* const first_page = data_ + offset - (reinterpret_cast<uintptr_t>(data_ + offset) % page);
  if (mincore(first_page, (last - first) * page, vec.data()) != 0) {
    return unexpected(errno_error("mincore"));
  }
  for (unsigned char v : vec)
    resident += (v & 1) ? page : 0;
  return resident;
}

Result<uint64_t> Backing::resident_bytes_total() const {
  if (data_ == nullptr) return uint64_t{0};
  if (kind_ == BackingKind::Shared) {
    struct stat st {};
    if (fstat(fd_, &st) != 0) return unexpected(errno_error("fstat"));
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  // Sum "Anonymous:" over the VMAs inside our mapping (madvise may have split it).
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) return resident_bytes(0, size_);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_);
  const uintptr_t hi = lo + size_;
  uint64_t total = 0;
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    uintptr_t start = 0;
    uintptr_t end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start >= lo && end <= hi;
      continue;
    }
    if (inside && line.rfind("Anonymous:", 0) == 0) {
      uint64_t kib = 0;
      std::istringstream(line.substr(10)) >> kib;
      total += kib * 1024;
    }
  }
  return total;
}

VMEM_NAMESPACE_END
