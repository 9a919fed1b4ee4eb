// face-api's face_recognition net (dlib's ResNet-29, see embed/dlib_resnet.hpp for the architecture) on
// oneDNN primitives: the fast CPU path of the dlib descriptor. Private to the engine; Embedder::create
// picks it for EmbedderKind::kDlibResNet when the build has oneDNN (FG_HAVE_DNNL) and falls back to the
// OpenCV DNN net otherwise (embed/embedder.cpp).
//
// Why oneDNN: OpenCV 4.6's DNN convolutions are generic AVX2/AVX-512 loops (about 14 ms per face here);
// oneDNN (Debian 12's libdnnl2 2.6.3, Intel's reference CPU deep-learning library, also used by PyTorch and
// OpenVINO) JIT-compiles kernels for the CPU it runs on (AVX-512, AVX512_BF16, AMX), picks blocked memory
// layouts itself and fuses the bias, residual sum and ReLU into each convolution. It is a maintained
// Debian package, so no vendored code and no download at build time.
//
// Precision. kFp32 (default) computes in float like the OpenCV path: descriptors agree to < 1e-4 (L2).
// bf16 = true stores activations and weights as bfloat16 (float accumulation; AMX tiles where the CPU has
// them): faster, with a small, measured descriptor error (tests/model/dlib_resnet_dnnl_test.cpp).
//
// Threads. Parallel over faces: a batch is cut into chunks of up to 8 faces that `threads` workers (the
// caller and threads - 1 helpers) take in turn, each running oneDNN single-threaded. Debian builds
// oneDNN on OpenMP (libgomp; DNNL_CPU_RUNTIME == OMP in dnnl_config.h), whose statically split parallel
// regions waited at every primitive for a thread the shared 2-core machine had not scheduled (see
// forward() in the .cpp); the workers set omp_set_num_threads(1) for their duration (restored after, so
// other OpenMP users such as FAISS are unaffected). threads: options.threads when > 0, otherwise
// cv::getNumThreads() at each call, so that the process-wide OpenCV setting the rest of the engine follows
// (e.g. `faceguard bench --threads`) applies here too. A single face therefore runs on one core.
//
// Thread safety: one embedder per thread (like every Embedder).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "faceguard/embedder.hpp"
#include "faceguard/result.hpp"
#include "model/weights.hpp"

namespace faceguard::embed {

// Whether this build has the oneDNN path (FG_HAVE_DNNL); without it the create functions return
// kUnavailable.
bool dlib_resnet_dnnl_available();

struct DnnlResNetOptions {
  int threads = 0;     // 0: follow cv::getNumThreads() at each call
  bool bf16 = false;   // bfloat16 activations and weights (see the file comment)
  int input_size = 150;  // input side (>= 150; other sizes are for the reference tests, like build_dlib_resnet)
};

// Called once, on the first oneDNN failure after creation (e.g. no kernel for a new batch size): the
// embedder then delegates every later call to what it returns (the OpenCV DNN embedder).
using EmbedderFallback = std::function<Result<std::unique_ptr<Embedder>>()>;

// From loaded weights (the tests perturb them). Builds the batch-1 primitives eagerly, so that a CPU or
// build without the needed kernels fails here (kUnavailable) rather than at the first embed.
// kModelError on missing/mis-shaped weights.
Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const model::WeightMap& weights,
                                                          const DnnlResNetOptions& options,
                                                          EmbedderFallback fallback = {});

// From the face_recognition weights manifest; the fallback is the OpenCV DNN embedder of the same manifest.
Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const std::filesystem::path& manifest,
                                                          const EmbedderOptions& options);

// Embedder::create's choice for EmbedderKind::kDlibResNet (EmbedderOptions::engine, see embedder.hpp):
// kAuto (unless $FACEGUARD_DLIB_ENGINE says otherwise) tries oneDNN and falls back to OpenCV DNN on any
// failure; kOpenCv is the OpenCV DNN net; kOneDnn is oneDNN or kUnavailable.
Result<std::unique_ptr<Embedder>> create_dlib_resnet_engine(const std::filesystem::path& manifest,
                                                            const EmbedderOptions& options);

}  // namespace faceguard::embed
