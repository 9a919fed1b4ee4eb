// Embedder::create: picks the descriptor network for EmbedderOptions::kind.
#include "faceguard/embedder.hpp"

#include "embed/dlib_resnet.hpp"

namespace faceguard {

Result<std::unique_ptr<Embedder>> Embedder::create(const ModelPack& pack, const EmbedderOptions& options) {
  if (options.threads < 0) return make_error(ErrorCode::kInvalidArgument, "embedder: threads must be >= 0");
  switch (options.kind) {
    case EmbedderKind::kDlibResNet: {
      FG_ASSIGN_OR_RETURN(auto manifest, pack.file(ModelFile::kFaceRecognitionManifest));
      return embed::create_dlib_resnet(manifest, options);
    }
    case EmbedderKind::kMobileFaceNet:
      // Needs a TFLite reader (OpenCV 4.6 has none); tracked as its own issue.
      return make_error(ErrorCode::kModelError, "MobileFaceNet embedder: not built yet (use the dlib ResNet)");
  }
  return make_error(ErrorCode::kInvalidArgument, "embedder: unknown kind");
}

}  // namespace faceguard
