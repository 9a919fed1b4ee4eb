// faceguard/result.hpp - errors as values at the API edge.
//
//   faceguard::Result<cv::Mat> img = faceguard::load_image("a.jpg");
//   if (!img) { std::cerr << img.error().message; return exit_code_for(img.error().code); }
//   use(*img);
//
// Every public function that can fail on user input returns Result<T> or Status.
// Exceptions may be used inside the library but never cross this boundary.
// Thread safety: Result is a plain value type.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace faceguard {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // caller passed something malformed (bad JSON, bad option, bad id format)
  kNotFound,          // unknown id, missing file
  kIoError,           // read/write failure, disk full
  kCorruptData,       // truncated or inconsistent file (image, weights, gallery, audit log)
  kUnsupportedFormat, // not an image, unknown version
  kImageTooLarge,     // above the decoder pixel limit
  kNoFace,            // no face found where one was required
  kMultipleFaces,     // several faces where exactly one was required
  kModelError,        // missing/wrong model files, checksum mismatch
  kPolicyDenied,      // the policy decision point said no
  kConflict,          // already exists, concurrent modification
  kPermissionDenied,  // wrong key, wrong role
  kUnavailable,       // resource busy / not ready
  kInternal,          // a bug: should never be reachable from user input
};

std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_{ErrorCode::kOk, {}};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status{}; }

}  // namespace faceguard

// Propagate an error from an expression returning Result/Status.
#define FG_TRY_STATUS(expr)                    \
  do {                                         \
    auto fg_try_s_ = (expr);                   \
    if (!fg_try_s_) return fg_try_s_.error();  \
  } while (0)

#define FG_CONCAT_INNER_(a, b) a##b
#define FG_CONCAT_(a, b) FG_CONCAT_INNER_(a, b)
// FG_ASSIGN_OR_RETURN(auto x, make_x());
#define FG_ASSIGN_OR_RETURN(lhs, expr) FG_ASSIGN_OR_RETURN_IMPL_(FG_CONCAT_(fg_r_, __LINE__), lhs, expr)
#define FG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp) return std::move(tmp).error();        \
  lhs = std::move(tmp).value()
