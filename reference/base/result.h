// vmem::Result<T, E>: a value or an error, shaped like C++23 std::expected (which g++ 12 and
// clang 14 cannot give us in C++20, decisions D4). Fallible functions in reference/ return it;
// exceptions appear only at the CLI edge.
#pragma once

#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

// Wraps an error so that Result's constructor cannot confuse it with a value.
template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

template <class E>
[[nodiscard]] Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return Unexpected<std::decay_t<E>>{std::forward<E>(e)};
}

// A human-readable error for the host side: configuration, migration streams, traces.
// Hot paths use small enums instead, so they never allocate.
struct Error {
  std::string message;
  friend bool operator==(const Error&, const Error&) = default;
};

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): `return value;` is the point.
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  template <class G>
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Unexpected<G> e) : v_(std::in_place_index<1>, std::move(e.error)) {}

  bool has_value() const { return v_.index() == 0; }
  // Reading the wrong side is a programming error: abort rather than return garbage.
  T& value() & { return checked<0>(); }
  const T& value() const& { return checked<0>(); }
  T&& value() && { return std::move(checked<0>()); }
  const E& error() const { return checked<1>(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  template <std::size_t I>
  auto& checked() const {
    if (v_.index() != I) std::abort();
    return std::get<I>(const_cast<std::variant<T, E>&>(v_));
  }
  std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <class G>
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Unexpected<G> e) : error_(std::move(e.error)), failed_(true) {}

  bool has_value() const { return !failed_; }
  const E& error() const {
    if (!failed_) std::abort();
    return error_;
  }

 private:
  E error_{};
  bool failed_ = false;
};

using Status = Result<void, Error>;

inline Status ok() {
  return {};
}

VMEM_NAMESPACE_END

// Early return on error, as Chromium's RETURN_IF_ERROR; converts the error to the caller's.
#define VMEM_TRY(expr)                                                                      \
  do {                                                                                      \
    auto vmem_try_result_ = (expr);                                                         \
    if (!vmem_try_result_.has_value()) return ::vmem::unexpected(vmem_try_result_.error()); \
  } while (false)

// Binds the value of a Result to `lhs`, or returns its error (Chromium's ASSIGN_OR_RETURN).
#define VMEM_ASSIGN_OR_RETURN(lhs, expr) \
  VMEM_ASSIGN_OR_RETURN_IMPL_(VMEM_CONCAT_(vmem_assign_result_, __LINE__), lhs, expr)
#define VMEM_CONCAT_(a, b) VMEM_CONCAT_IMPL_(a, b)
#define VMEM_CONCAT_IMPL_(a, b) a##b
#define VMEM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)             \
  auto tmp = (expr);                                            \
  if (!tmp.has_value()) return ::vmem::unexpected(tmp.error()); \
  lhs = std::move(*tmp)
