// Internal: the gallery export file - versioned, checksummed, encrypted.
//
//   "FGGXPRT\0"  u32 version (1)  u32 header length  header JSON (clear: model, dim, counts, cipher)
//   secretstream header (24 bytes)
//   chunks: u32 length, ciphertext of one subject as JSON (libsodium crypto_secretstream_xchacha20poly1305,
//           the clear header as associated data); the last chunk holds the counts {"subjects","templates"}
//           with TAG_FINAL, so truncation or a dropped chunk is detected even before the checksum
//   SHA-256 of everything above (32 bytes)
// The checksum is verified first, so a damaged file is kCorruptData and an intact file that will not decrypt
// is a wrong transfer key (kPermissionDenied). Integers are little-endian.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "faceguard/gallery.hpp"

namespace faceguard::gallery {

constexpr std::uint32_t kTransferVersion = 1;

struct TransferHeader {
  std::string model_id;
  int dim = 0;
};

struct TransferSubject {
  SubjectInfo info;
  std::vector<std::vector<float>> values;  // one per info.templates entry
};

class TransferWriter {
 public:
  static Result<std::unique_ptr<TransferWriter>> create(const std::filesystem::path& file, const SecretKey& key,
                                                        const TransferHeader& header);
  ~TransferWriter();
  Status write(const TransferSubject& subject);
  Status finish();  // writes the final tag and the checksum, then renames the temporary file into place

 private:
  struct State;
  explicit TransferWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

// Verify the checksum, then decrypt chunk by chunk.
Status read_transfer(const std::filesystem::path& file, const SecretKey& key,
                     const std::function<Status(const TransferHeader&)>& on_header,
                     const std::function<Status(TransferSubject&&)>& on_subject);

}  // namespace faceguard::gallery
