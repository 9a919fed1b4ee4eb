// A small, bounds-checked reader for TensorFlow Lite model files (.tflite), turning the FlatBuffer into a
// typed graph: tensors (shape, type, constant data, quantisation) and operators (builtin code, inputs,
// outputs, the options the conv/arith ops carry). OpenCV 4.6 has no TFLite importer, and the project takes
// no flatbuffers dependency, so the binary layout is walked by hand here.
//
//   auto model = faceguard::model::tflite::load_model(path);     // kModelError on any inconsistency
//   const auto& g = model->graph();                              // subgraph 0
//   for (const auto& op : g.operators) ... op.code == BuiltinOp::kConv2D, op.options.stride_h ...
//   auto w = faceguard::model::tflite::to_float(g.tensors[op.inputs[1]]);   // dequantised weights
//
// Format (tensorflow/lite/schema/schema.fbs, file_identifier "TFL3"). Field ids used here:
//   Model{0 version:uint, 1 operator_codes, 2 subgraphs, 3 description:string, 4 buffers}
//   OperatorCode{0 deprecated_builtin_code:byte, 1 custom_code:string, 2 version:int=1, 3 builtin_code:int}
//   SubGraph{0 tensors, 1 inputs:[int], 2 outputs:[int], 3 operators, 4 name:string}
//   Tensor{0 shape:[int], 1 type:byte, 2 buffer:uint, 3 name:string, 4 quantization}
//   QuantizationParameters{0 min, 1 max, 2 scale:[float], 3 zero_point:[long], 4/5 details, 6 quantized_dimension}
//   Operator{0 opcode_index:uint, 1 inputs:[int], 2 outputs:[int], 3 builtin_options_type:ubyte,
//            4 builtin_options:table}
//   Buffer{0 data:[ubyte], 1 offset:ulong, 2 size:ulong}   (offset/size: data stored after the FlatBuffer)
// FlatBuffers binary layout: the file starts with a uoffset32 to the root table; a table starts with a
// soffset32 to its vtable (vtable = table - soffset); a vtable is uint16 {vtable bytes, table bytes, field
// offsets...} with 0 meaning "absent, use the default"; offset-typed fields hold a uoffset32 relative to
// the field's own position; vectors and strings are a uint32 length followed by the elements. All
// scalars are little-endian. Every offset, vtable entry and vector length is checked against the file size
// (and the table's own extent) before it is read, so a corrupt or hostile file gives kModelError naming
// the broken part, never an out-of-bounds read.
//
// Thread safety: a Model is immutable after parsing; share it freely. Tensor::data views the Model's
// bytes, so a Model is movable but not copyable, and tensors must not outlive it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::model::tflite {

// schema.fbs enum TensorType.
enum class TensorType : std::int8_t {
  kFloat32 = 0,
  kFloat16 = 1,
  kInt32 = 2,
  kUInt8 = 3,
  kInt64 = 4,
  kString = 5,
  kBool = 6,
  kInt16 = 7,
  kComplex64 = 8,
  kInt8 = 9,
  kFloat64 = 10,
};

// schema.fbs enum BuiltinOperator: the codes this project meets (others are kept as their number).
enum class BuiltinOp : std::int32_t {
  kAdd = 0,
  kAveragePool2D = 1,
  kConcatenation = 2,
  kConv2D = 3,
  kDepthwiseConv2D = 4,
  kDequantize = 6,
  kFullyConnected = 9,
  kL2Normalization = 11,
  kLogistic = 14,
  kMaxPool2D = 17,
  kMul = 18,
  kRelu = 19,
  kRelu6 = 21,
  kReshape = 22,
  kSoftmax = 25,
  kPad = 34,
  kTranspose = 39,
  kMean = 40,
  kSub = 41,
  kDiv = 42,
  kSqueeze = 43,
  kPrelu = 54,
  kMaximum = 55,
  kAbs = 101,
};

enum class Padding : std::int8_t { kSame = 0, kValid = 1 };

// schema.fbs enum ActivationFunctionType.
enum class Activation : std::int8_t { kNone = 0, kRelu = 1, kReluN1To1 = 2, kRelu6 = 3, kTanh = 4, kSignBit = 5 };

// Bytes per element, 0 for variable-size types (string).
std::size_t type_size(TensorType type);
std::string_view type_name(TensorType type);
// "CONV_2D", ... or "BUILTIN_<n>" for codes without a name here.
std::string op_name(std::int32_t code);

struct Quantization {
  std::vector<float> scale;            // empty: not quantised
  std::vector<std::int64_t> zero_point;
  int quantized_dimension = 0;         // axis the per-channel scales run along
  bool empty() const { return scale.empty(); }
};

struct Tensor {
  std::string name;
  std::vector<int> shape;                // as stored (TFLite: NHWC activations, OHWI conv filters,
                                         // 1HW(C*M) depthwise filters)
  TensorType type = TensorType::kFloat32;
  std::span<const std::uint8_t> data;    // constant contents (views the Model's bytes); empty for activations
  Quantization quantization;
  std::size_t elements() const;          // product of shape (1 for a scalar)
  bool is_constant() const { return !data.empty(); }
};

// The builtin options this reader understands; fields an op does not have keep their defaults.
struct OperatorOptions {
  int type = 0;                          // schema.fbs union BuiltinOptions index (0 = none)
  Padding padding = Padding::kSame;      // CONV_2D, DEPTHWISE_CONV_2D, pools
  int stride_w = 1;
  int stride_h = 1;
  int dilation_w = 1;
  int dilation_h = 1;
  int depth_multiplier = 1;              // DEPTHWISE_CONV_2D
  int filter_w = 0;                      // pools
  int filter_h = 0;
  Activation activation = Activation::kNone;  // fused activation (conv, pools, ADD, SUB, MUL, DIV, FC, CONCAT)
  int axis = 0;                          // CONCATENATION
  std::vector<int> new_shape;            // RESHAPE (may be absent: then the shape input gives it)
};

struct Operator {
  std::int32_t code = 0;                 // BuiltinOperator value (compare with BuiltinOp)
  std::string custom_code;               // for CUSTOM ops
  int version = 1;
  std::vector<int> inputs;               // tensor indices; -1 = optional input left out
  std::vector<int> outputs;
  OperatorOptions options;
  bool is(BuiltinOp op) const { return code == static_cast<std::int32_t>(op); }
};

struct Graph {
  std::string name;
  std::vector<Tensor> tensors;
  std::vector<Operator> operators;       // in execution order
  std::vector<int> inputs;
  std::vector<int> outputs;
};

// Upper bounds that keep a hostile file from asking for absurd allocations.
inline constexpr std::size_t kMaxModelBytes = std::size_t(1) << 30;
inline constexpr std::size_t kMaxTensorRank = 8;

class Model {
 public:
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;

  std::uint32_t version() const { return version_; }
  const std::string& description() const { return description_; }
  const std::vector<Graph>& subgraphs() const { return subgraphs_; }
  const Graph& graph() const { return subgraphs_.front(); }  // parse guarantees at least one
  std::size_t byte_size() const { return bytes_.size(); }

 private:
  friend Result<Model> parse_model(std::vector<std::uint8_t> bytes);
  Model() = default;
  std::vector<std::uint8_t> bytes_;
  std::uint32_t version_ = 0;
  std::string description_;
  std::vector<Graph> subgraphs_;
};

// Parses a whole .tflite file held in memory (the Model keeps the bytes). kModelError with the broken
// part named ("subgraph 0 tensor 12: shape vector runs past the end of the file") on any inconsistency.
Result<Model> parse_model(std::vector<std::uint8_t> bytes);
// Reads and parses a file; a missing/unreadable file is kModelError too (it is a model file).
Result<Model> load_model(const std::filesystem::path& path);

// The constant tensor's values as float: FLOAT32 copied, FLOAT16 widened, INT8/UINT8/INT16/INT32 with
// quantisation parameters dequantised ((q - zero_point) * scale, per channel along quantized_dimension),
// INT32/INT64 without quantisation converted as plain numbers. kModelError for an activation tensor or a
// type that cannot be turned into float.
Result<std::vector<float>> to_float(const Tensor& tensor);

// IEEE 754 half -> float (exact, subnormals and inf/nan included).
float half_to_float(std::uint16_t h);

}  // namespace faceguard::model::tflite
