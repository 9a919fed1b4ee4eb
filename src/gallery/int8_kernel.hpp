// Which int8 dot-product kernel this CPU runs, chosen once at run time: AVX-512 VNNI (vpdpbusd), AVX2, or
// the portable scalar reference the others are tested against. Shared by scan8 and block8, so both pick the
// same one on a given machine.
#pragma once

#include <string_view>

namespace faceguard::gallery {

enum class Int8Kernel { kScalar, kAvx2, kVnni };

inline Int8Kernel pick_int8_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni"))
    return Int8Kernel::kVnni;
  if (__builtin_cpu_supports("avx2")) return Int8Kernel::kAvx2;
  return Int8Kernel::kScalar;
}

inline Int8Kernel int8_kernel() {
  static const Int8Kernel k = pick_int8_kernel();
  return k;
}

inline std::string_view int8_kernel_name(Int8Kernel k) {
  switch (k) {
    case Int8Kernel::kVnni: return "avx512vnni";
    case Int8Kernel::kAvx2: return "avx2";
    case Int8Kernel::kScalar: return "scalar";
  }
  return "scalar";
}

}  // namespace faceguard::gallery
