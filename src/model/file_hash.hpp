// SHA-256 of files and buffers (libsodium), as lowercase hex. Used to pin npm tarballs and to record and
// re-check every installed model file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "faceguard/result.hpp"

namespace faceguard::model {

std::string sha256_hex(std::span<const std::uint8_t> bytes);
// Streams the file in 1 MiB blocks; kIoError if it cannot be read.
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace faceguard::model
