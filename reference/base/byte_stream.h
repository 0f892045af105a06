// Little-endian byte streams for the migration format. The reader never reads past the end: a
// truncated stream is an error that names the field it was reading.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "reference/base/endian.h"
#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

class ByteWriter {
 public:
  template <class T>
  void put(T v) {
    uint8_t b[sizeof(T)];
    store_le(b, v);
    out_.insert(out_.end(), b, b + sizeof(T));
  }
  void put_bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // Many words at once (a bitmap): one resize instead of one insert per word.
  void put_words(std::span<const uint64_t> words) {
    const std::size_t at = out_.size();
    out_.resize(at + 8 * words.size());
    for (std::size_t i = 0; i < words.size(); ++i)
      store_le(out_.data() + at + 8 * i, words[i]);
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> in) : in_(in) {}

  template <class T>
  Result<T> get(std::string_view field) {
    if (in_.size() - pos_ < sizeof(T)) {
      return unexpected(
          Error{fmt::format("stream truncated at byte {} in field '{}'", pos_, field)});
    }
    const T v = load_le<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  // A boolean stored as one byte: anything but 0 or 1 is an error.
  Result<bool> get_flag(std::string_view field) {
    auto b = get<uint8_t>(field);
    if (!b.has_value()) return unexpected(b.error());
    if (*b > 1) return unexpected(Error{fmt::format("field '{}' is {}, not 0 or 1", field, *b)});
    return *b == 1;
  }
  // Fills `out` with consecutive words, or fails (reading nothing) if the stream is too short.
  Status get_words(std::span<uint64_t> out, std::string_view field) {
    if ((in_.size() - pos_) / 8 < out.size()) {
      return unexpected(
          Error{fmt::format("stream truncated at byte {} in field '{}'", pos_, field)});
    }
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = load_le<uint64_t>(in_.data() + pos_ + 8 * i);
    pos_ += 8 * out.size();
    return ok();
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  std::size_t position() const { return pos_; }

 private:
  std::span<const uint8_t> in_;
  std::size_t pos_ = 0;
};

VMEM_NAMESPACE_END
