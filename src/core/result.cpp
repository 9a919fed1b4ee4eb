#include "faceguard/result.hpp"

namespace faceguard {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kIoError: return "io_error";
    case ErrorCode::kCorruptData: return "corrupt_data";
    case ErrorCode::kUnsupportedFormat: return "unsupported_format";
    case ErrorCode::kImageTooLarge: return "image_too_large";
    case ErrorCode::kNoFace: return "no_face";
    case ErrorCode::kMultipleFaces: return "multiple_faces";
    case ErrorCode::kModelError: return "model_error";
    case ErrorCode::kPolicyDenied: return "policy_denied";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace faceguard
