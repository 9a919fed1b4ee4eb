#include "model/tflite_reader.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>

#include "model/weights.hpp"

namespace faceguard::model::tflite {
namespace {

// Thrown while walking the buffer; parse_model turns it into kModelError. `what` says where it broke.
class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw ParseError(where + ": " + what); }

// A view of the FlatBuffer with checked little-endian scalar reads. Positions are size_t byte offsets.
class Buffer {
 public:
  explicit Buffer(std::span<const std::uint8_t> bytes) : b_(bytes) {}
  std::size_t size() const { return b_.size(); }
  std::span<const std::uint8_t> bytes() const { return b_; }

  void need(std::size_t pos, std::size_t n, const std::string& where) const {
    if (pos > b_.size() || n > b_.size() - pos)
      fail(where, "reads " + std::to_string(n) + " bytes at " + std::to_string(pos) + ", past the end of the " +
                      std::to_string(b_.size()) + "-byte file");
  }
  template <typename T>
  T read(std::size_t pos, const std::string& where) const {
    need(pos, sizeof(T), where);
    T v;
    std::memcpy(&v, b_.data() + pos, sizeof(T));  // the format is little-endian, as is every target here
    return v;
  }
  // Follows a uoffset32 stored at `pos` (relative to pos itself).
  std::size_t deref(std::size_t pos, const std::string& where) const {
    const std::uint32_t off = read<std::uint32_t>(pos, where);
    if (off == 0) fail(where, "zero offset");
    const std::size_t target = pos + off;
    if (target >= b_.size()) fail(where, "offset " + std::to_string(off) + " at " + std::to_string(pos) + " points past the end of the file");
    return target;
  }

 private:
  std::span<const std::uint8_t> b_;
};

// One table: its position and vtable, with field lookups checked against the table's declared extent.
class Table {
 public:
  Table(const Buffer& buf, std::size_t pos, std::string where) : buf_(&buf), pos_(pos), where_(std::move(where)) {
    const std::int32_t soff = buf.read<std::int32_t>(pos, where_ + " (table header)");
    const std::int64_t vt = static_cast<std::int64_t>(pos) - soff;
    if (vt < 0 || static_cast<std::uint64_t>(vt) + 4 > buf.size())
      fail(where_, "vtable offset " + std::to_string(soff) + " points outside the file");
    vt_ = static_cast<std::size_t>(vt);
    vt_size_ = buf.read<std::uint16_t>(vt_, where_ + " (vtable)");
    table_size_ = buf.read<std::uint16_t>(vt_ + 2, where_ + " (vtable)");
    if (vt_size_ < 4 || vt_size_ % 2 != 0) fail(where_, "vtable size " + std::to_string(vt_size_) + " is malformed");
    buf.need(vt_, vt_size_, where_ + " (vtable)");
    if (table_size_ < 4) fail(where_, "table size " + std::to_string(table_size_) + " is smaller than its header");
    buf.need(pos_, table_size_, where_ + " (table)");
  }

  const std::string& where() const { return where_; }

  // Position of field `id` holding `width` bytes, or 0 when the field is absent.
  std::size_t field(int id, std::size_t width) const {
    const std::size_t slot = 4 + 2 * static_cast<std::size_t>(id);
    if (slot + 2 > vt_size_) return 0;
    const std::uint16_t off = buf_->read<std::uint16_t>(vt_ + slot, where_);
    if (off == 0) return 0;
    if (off < 4 || off + width > table_size_)
      fail(where_, "field " + std::to_string(id) + " lies outside the table (offset " + std::to_string(off) + ")");
    return pos_ + off;
  }

  template <typename T>
  T scalar(int id, T fallback) const {
    const std::size_t p = field(id, sizeof(T));
    return p ? buf_->read<T>(p, where_) : fallback;
  }

  // Target of an offset field (table, vector, string), or 0 when absent.
  std::size_t ref(int id, const char* what) const {
    const std::size_t p = field(id, 4);
    return p ? buf_->deref(p, where_ + " " + what) : 0;
  }

  std::optional<Table> table(int id, const char* what) const {
    const std::size_t p = ref(id, what);
    if (!p) return std::nullopt;
    return Table(*buf_, p, where_ + " " + what);
  }

  // A vector field: position of element 0 and the element count, checked to fit in the file.
  struct Span {
    std::size_t pos = 0;
    std::size_t count = 0;
  };
  Span vector(int id, std::size_t elem_size, const char* what) const {
    const std::size_t p = ref(id, what);
    if (!p) return {};
    const std::string w = where_ + " " + what + " vector";
    const std::uint32_t n = buf_->read<std::uint32_t>(p, w);
    // p + 4 <= size after the read above; n * elem_size cannot overflow 64 bits (n < 2^32, elem <= 8).
    if (static_cast<std::uint64_t>(n) * elem_size > buf_->size() - (p + 4))
      fail(w, "length " + std::to_string(n) + " runs past the end of the file");
    return {p + 4, n};
  }

  template <typename T>
  std::vector<T> scalars(int id, const char* what) const {
    const Span s = vector(id, sizeof(T), what);
    std::vector<T> out(s.count);
    if (s.count) std::memcpy(out.data(), buf_->bytes().data() + s.pos, s.count * sizeof(T));
    return out;
  }

  std::string string(int id, const char* what) const {
    const Span s = vector(id, 1, what);
    return std::string(reinterpret_cast<const char*>(buf_->bytes().data() + s.pos), s.count);
  }

  // Element i of a vector of tables.
  Table element(const Span& s, std::size_t i, const std::string& where) const {
    return Table(*buf_, buf_->deref(s.pos + 4 * i, where), where);
  }

 private:
  const Buffer* buf_;
  std::size_t pos_;
  std::size_t vt_ = 0;
  std::uint16_t vt_size_ = 0;
  std::uint16_t table_size_ = 0;
  std::string where_;
};

// schema.fbs union BuiltinOptions indices (1-based; 0 = NONE).
constexpr int kConv2DOptions = 1;
constexpr int kDepthwiseConv2DOptions = 2;
constexpr int kPool2DOptions = 5;
constexpr int kFullyConnectedOptions = 8;
constexpr int kConcatenationOptions = 10;
constexpr int kAddOptions = 11;
constexpr int kReshapeOptions = 17;
constexpr int kMulOptions = 21;
constexpr int kSubOptions = 28;
constexpr int kDivOptions = 29;

Activation activation_from(std::int8_t v, const std::string& where) {
  if (v < 0 || v > 5) fail(where, "unknown fused activation " + std::to_string(v));
  return static_cast<Activation>(v);
}

Padding padding_from(std::int8_t v, const std::string& where) {
  if (v != 0 && v != 1) fail(where, "unknown padding " + std::to_string(v));
  return static_cast<Padding>(v);
}

int positive(std::int32_t v, const char* what, const std::string& where) {
  if (v <= 0) fail(where, std::string(what) + " " + std::to_string(v) + " is not positive");
  return v;
}

OperatorOptions parse_options(const Table& op, const std::string& where) {
  OperatorOptions o;
  o.type = op.scalar<std::uint8_t>(3, 0);
  auto t = op.table(4, "builtin_options");
  if (!t) return o;
  const std::string& w = t->where();
  switch (o.type) {
    case kConv2DOptions:
      o.padding = padding_from(t->scalar<std::int8_t>(0, 0), w);
      o.stride_w = positive(t->scalar<std::int32_t>(1, 0), "stride_w", w);
      o.stride_h = positive(t->scalar<std::int32_t>(2, 0), "stride_h", w);
      o.activation = activation_from(t->scalar<std::int8_t>(3, 0), w);
      o.dilation_w = positive(t->scalar<std::int32_t>(4, 1), "dilation_w", w);
      o.dilation_h = positive(t->scalar<std::int32_t>(5, 1), "dilation_h", w);
      break;
    case kDepthwiseConv2DOptions:
      o.padding = padding_from(t->scalar<std::int8_t>(0, 0), w);
      o.stride_w = positive(t->scalar<std::int32_t>(1, 0), "stride_w", w);
      o.stride_h = positive(t->scalar<std::int32_t>(2, 0), "stride_h", w);
      // depth_multiplier 0 appears in some converters' output; the filter shape is authoritative then.
      o.depth_multiplier = t->scalar<std::int32_t>(3, 0);
      if (o.depth_multiplier < 0) fail(w, "negative depth_multiplier");
      o.activation = activation_from(t->scalar<std::int8_t>(4, 0), w);
      o.dilation_w = positive(t->scalar<std::int32_t>(5, 1), "dilation_w", w);
      o.dilation_h = positive(t->scalar<std::int32_t>(6, 1), "dilation_h", w);
      break;
    case kPool2DOptions:
      o.padding = padding_from(t->scalar<std::int8_t>(0, 0), w);
      o.stride_w = positive(t->scalar<std::int32_t>(1, 0), "stride_w", w);
      o.stride_h = positive(t->scalar<std::int32_t>(2, 0), "stride_h", w);
      o.filter_w = positive(t->scalar<std::int32_t>(3, 0), "filter_width", w);
      o.filter_h = positive(t->scalar<std::int32_t>(4, 0), "filter_height", w);
      o.activation = activation_from(t->scalar<std::int8_t>(5, 0), w);
      break;
    case kFullyConnectedOptions:
    case kAddOptions:
    case kMulOptions:
    case kSubOptions:
    case kDivOptions:
      o.activation = activation_from(t->scalar<std::int8_t>(0, 0), w);
      break;
    case kConcatenationOptions:
      o.axis = t->scalar<std::int32_t>(0, 0);
      o.activation = activation_from(t->scalar<std::int8_t>(1, 0), w);
      break;
    case kReshapeOptions:
      o.new_shape = t->scalars<std::int32_t>(0, "new_shape");
      break;
    default:
      break;  // options of ops this project does not build are not interpreted
  }
  (void)where;
  return o;
}

std::vector<int> tensor_indices(const Table& t, int id, const char* what, std::size_t tensor_count) {
  std::vector<int> v = t.scalars<std::int32_t>(id, what);
  for (int i : v)
    if (i < -1 || (i >= 0 && static_cast<std::size_t>(i) >= tensor_count))
      fail(t.where(), std::string(what) + " names tensor " + std::to_string(i) + " of " + std::to_string(tensor_count));
  return v;
}

struct RawBuffer {
  std::span<const std::uint8_t> data;
};

std::vector<RawBuffer> parse_buffers(const Buffer& buf, const Table& model) {
  const auto s = model.vector(4, 4, "buffers");
  std::vector<RawBuffer> out(s.count);
  for (std::size_t i = 0; i < s.count; ++i) {
    const Table b = model.element(s, i, "buffer " + std::to_string(i));
    const auto d = b.vector(0, 1, "data");
    if (d.count) {
      out[i].data = buf.bytes().subspan(d.pos, d.count);
      continue;
    }
    // Models over 2 GB keep the data after the FlatBuffer: offset from the file start and a size.
    const std::uint64_t off = b.scalar<std::uint64_t>(1, 0), size = b.scalar<std::uint64_t>(2, 0);
    if (off > 1 || size > 0) {
      if (off > buf.size() || size > buf.size() - off) fail(b.where(), "external data runs past the end of the file");
      out[i].data = buf.bytes().subspan(static_cast<std::size_t>(off), static_cast<std::size_t>(size));
    }
  }
  return out;
}

Tensor parse_tensor(const Table& t, const std::vector<RawBuffer>& buffers) {
  Tensor r;
  const std::string& w = t.where();
  r.shape = t.scalars<std::int32_t>(0, "shape");
  if (r.shape.size() > kMaxTensorRank) fail(w, "rank " + std::to_string(r.shape.size()) + " is too large");
  std::uint64_t count = 1;
  for (int d : r.shape) {
    if (d < 0) fail(w, "negative dimension " + std::to_string(d));
    count *= static_cast<std::uint64_t>(d);
    if (count > kMaxModelBytes) fail(w, "element count overflows");
  }
  const std::int8_t type = t.scalar<std::int8_t>(1, 0);
  if (type < 0 || type > 10) fail(w, "unknown tensor type " + std::to_string(type));
  r.type = static_cast<TensorType>(type);
  const std::uint32_t b = t.scalar<std::uint32_t>(2, 0);
  if (b >= buffers.size() && !(b == 0 && buffers.empty()))
    fail(w, "buffer index " + std::to_string(b) + " of " + std::to_string(buffers.size()));
  if (!buffers.empty()) r.data = buffers[b].data;
  r.name = t.string(3, "name");
  if (auto q = t.table(4, "quantization")) {
    r.quantization.scale = q->scalars<float>(2, "scale");
    r.quantization.zero_point = q->scalars<std::int64_t>(3, "zero_point");
    r.quantization.quantized_dimension = q->scalar<std::int32_t>(6, 0);
    const auto& qz = r.quantization;
    if (!qz.zero_point.empty() && qz.zero_point.size() != qz.scale.size())
      fail(w, "quantization has " + std::to_string(qz.scale.size()) + " scales but " +
                  std::to_string(qz.zero_point.size()) + " zero points");
    if (qz.scale.size() > 1 &&
        (qz.quantized_dimension < 0 || static_cast<std::size_t>(qz.quantized_dimension) >= r.shape.size() ||
         static_cast<std::size_t>(r.shape[qz.quantized_dimension]) != qz.scale.size()))
      fail(w, "per-channel quantization does not match the shape");
  }
  const std::size_t es = type_size(r.type);
  if (!r.data.empty() && es != 0 && r.data.size() != count * es)
    fail(w, "'" + r.name + "' holds " + std::to_string(r.data.size()) + " bytes, its shape needs " +
                std::to_string(count * es));
  return r;
}

struct OpCode {
  std::int32_t code = 0;
  std::string custom;
  int version = 1;
};

std::vector<OpCode> parse_opcodes(const Table& model) {
  const auto s = model.vector(1, 4, "operator_codes");
  std::vector<OpCode> out(s.count);
  for (std::size_t i = 0; i < s.count; ++i) {
    const Table c = model.element(s, i, "operator_code " + std::to_string(i));
    // Files from before schema 3a keep the code in the byte field only; newer ones in both (the byte
    // saturating at 127, PLACEHOLDER_FOR_GREATER_OP_CODES). The larger of the two is the real code.
    const std::int32_t old_code = c.scalar<std::int8_t>(0, 0);
    const std::int32_t new_code = c.scalar<std::int32_t>(3, 0);
    out[i].code = std::max(old_code, new_code);
    if (out[i].code < 0) fail(c.where(), "negative builtin code");
    out[i].custom = c.string(1, "custom_code");
    out[i].version = c.scalar<std::int32_t>(2, 1);
  }
  return out;
}

Graph parse_graph(const Table& g, const std::vector<RawBuffer>& buffers, const std::vector<OpCode>& codes) {
  Graph r;
  const auto ts = g.vector(0, 4, "tensors");
  r.tensors.reserve(ts.count);
  for (std::size_t i = 0; i < ts.count; ++i)
    r.tensors.push_back(parse_tensor(g.element(ts, i, g.where() + " tensor " + std::to_string(i)), buffers));
  r.inputs = tensor_indices(g, 1, "inputs", r.tensors.size());
  r.outputs = tensor_indices(g, 2, "outputs", r.tensors.size());
  const auto os = g.vector(3, 4, "operators");
  r.operators.reserve(os.count);
  for (std::size_t i = 0; i < os.count; ++i) {
    const Table t = g.element(os, i, g.where() + " operator " + std::to_string(i));
    Operator op;
    const std::uint32_t idx = t.scalar<std::uint32_t>(0, 0);
    if (idx >= codes.size())
      fail(t.where(), "opcode index " + std::to_string(idx) + " of " + std::to_string(codes.size()));
    op.code = codes[idx].code;
    op.custom_code = codes[idx].custom;
    op.version = codes[idx].version;
    op.inputs = tensor_indices(t, 1, "inputs", r.tensors.size());
    op.outputs = tensor_indices(t, 2, "outputs", r.tensors.size());
    op.options = parse_options(t, t.where());
    r.operators.push_back(std::move(op));
  }
  r.name = g.string(4, "name");
  return r;
}

}  // namespace

std::size_t type_size(TensorType type) {
  switch (type) {
    case TensorType::kFloat32: return 4;
    case TensorType::kFloat16: return 2;
    case TensorType::kInt32: return 4;
    case TensorType::kUInt8: return 1;
    case TensorType::kInt64: return 8;
    case TensorType::kString: return 0;
    case TensorType::kBool: return 1;
    case TensorType::kInt16: return 2;
    case TensorType::kComplex64: return 8;
    case TensorType::kInt8: return 1;
    case TensorType::kFloat64: return 8;
  }
  return 0;
}

std::string_view type_name(TensorType type) {
  switch (type) {
    case TensorType::kFloat32: return "FLOAT32";
    case TensorType::kFloat16: return "FLOAT16";
    case TensorType::kInt32: return "INT32";
    case TensorType::kUInt8: return "UINT8";
    case TensorType::kInt64: return "INT64";
    case TensorType::kString: return "STRING";
    case TensorType::kBool: return "BOOL";
    case TensorType::kInt16: return "INT16";
    case TensorType::kComplex64: return "COMPLEX64";
    case TensorType::kInt8: return "INT8";
    case TensorType::kFloat64: return "FLOAT64";
  }
  return "?";
}

std::string op_name(std::int32_t code) {
  switch (static_cast<BuiltinOp>(code)) {
    case BuiltinOp::kAdd: return "ADD";
    case BuiltinOp::kAveragePool2D: return "AVERAGE_POOL_2D";
    case BuiltinOp::kConcatenation: return "CONCATENATION";
    case BuiltinOp::kConv2D: return "CONV_2D";
    case BuiltinOp::kDepthwiseConv2D: return "DEPTHWISE_CONV_2D";
    case BuiltinOp::kDequantize: return "DEQUANTIZE";
    case BuiltinOp::kFullyConnected: return "FULLY_CONNECTED";
    case BuiltinOp::kL2Normalization: return "L2_NORMALIZATION";
    case BuiltinOp::kLogistic: return "LOGISTIC";
    case BuiltinOp::kMaxPool2D: return "MAX_POOL_2D";
    case BuiltinOp::kMul: return "MUL";
    case BuiltinOp::kRelu: return "RELU";
    case BuiltinOp::kRelu6: return "RELU6";
    case BuiltinOp::kReshape: return "RESHAPE";
    case BuiltinOp::kSoftmax: return "SOFTMAX";
    case BuiltinOp::kPad: return "PAD";
    case BuiltinOp::kTranspose: return "TRANSPOSE";
    case BuiltinOp::kMean: return "MEAN";
    case BuiltinOp::kSub: return "SUB";
    case BuiltinOp::kDiv: return "DIV";
    case BuiltinOp::kSqueeze: return "SQUEEZE";
    case BuiltinOp::kPrelu: return "PRELU";
    case BuiltinOp::kMaximum: return "MAXIMUM";
    case BuiltinOp::kAbs: return "ABS";
  }
  return "BUILTIN_" + std::to_string(code);
}

std::size_t Tensor::elements() const {
  std::size_t n = 1;
  for (int d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal: mant * 2^-24
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

Result<Model> parse_model(std::vector<std::uint8_t> bytes) {
  if (bytes.size() > kMaxModelBytes) return make_error(ErrorCode::kModelError, "tflite: file is larger than 1 GiB");
  Model m;
  m.bytes_ = std::move(bytes);
  try {
    const Buffer buf(m.bytes_);
    if (buf.size() < 8) fail("tflite", "file of " + std::to_string(buf.size()) + " bytes is too short");
    if (std::memcmp(m.bytes_.data() + 4, "TFL3", 4) != 0)
      fail("tflite", "missing the TFL3 file identifier (not a TensorFlow Lite model)");
    const Table root(buf, buf.deref(0, "root offset"), "model");
    m.version_ = root.scalar<std::uint32_t>(0, 0);
    if (m.version_ != 3) fail("model", "schema version " + std::to_string(m.version_) + " is not supported (3 expected)");
    const auto codes = parse_opcodes(root);
    const auto buffers = parse_buffers(buf, root);
    m.description_ = root.string(3, "description");
    const auto gs = root.vector(2, 4, "subgraphs");
    if (gs.count == 0) fail("model", "no subgraphs");
    for (std::size_t i = 0; i < gs.count; ++i)
      m.subgraphs_.push_back(parse_graph(root.element(gs, i, "subgraph " + std::to_string(i)), buffers, codes));
  } catch (const ParseError& e) {
    return make_error(ErrorCode::kModelError, std::string("tflite: ") + e.what());
  } catch (const std::exception& e) {  // allocation failure on a hostile length, say
    return make_error(ErrorCode::kModelError, std::string("tflite: ") + e.what());
  }
  return m;
}

Result<Model> load_model(const std::filesystem::path& path) {
  auto bytes = read_file_bytes(path, kMaxModelBytes);
  if (!bytes) return make_error(ErrorCode::kModelError, "tflite: " + bytes.error().message);
  auto m = parse_model(std::move(*bytes));
  if (!m) return make_error(ErrorCode::kModelError, m.error().message + " (" + path.string() + ")");
  return m;
}

Result<std::vector<float>> to_float(const Tensor& t) {
  if (!t.is_constant()) return make_error(ErrorCode::kModelError, "tflite: tensor '" + t.name + "' has no data");
  const std::size_t n = t.elements();
  const std::uint8_t* p = t.data.data();
  std::vector<float> out(n);
  const auto& q = t.quantization;
  // Per-channel dequantisation: the channel of element i along quantized_dimension.
  std::size_t inner = 1;
  if (q.scale.size() > 1)
    for (std::size_t d = static_cast<std::size_t>(q.quantized_dimension) + 1; d < t.shape.size(); ++d)
      inner *= static_cast<std::size_t>(t.shape[d]);
  auto deq = [&](std::size_t i, double v) {
    if (q.empty()) return static_cast<float>(v);
    const std::size_t c = q.scale.size() > 1 ? (i / inner) % q.scale.size() : 0;
    const double zp = q.zero_point.empty() ? 0.0 : static_cast<double>(q.zero_point[c]);
    return static_cast<float>((v - zp) * q.scale[c]);
  };
  auto load = [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      out[i] = deq(i, static_cast<double>(v));
    }
  };
  switch (t.type) {
    case TensorType::kFloat32:
      if (!q.empty()) return make_error(ErrorCode::kModelError, "tflite: float tensor '" + t.name + "' is quantised");
      std::memcpy(out.data(), p, n * 4);
      break;
    case TensorType::kFloat16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        out[i] = half_to_float(h);
      }
      break;
    case TensorType::kFloat64: load(double{}); break;
    case TensorType::kInt8: load(std::int8_t{}); break;
    case TensorType::kUInt8: load(std::uint8_t{}); break;
    case TensorType::kInt16: load(std::int16_t{}); break;
    case TensorType::kInt32: load(std::int32_t{}); break;
    case TensorType::kInt64: load(std::int64_t{}); break;
    default:
      return make_error(ErrorCode::kModelError,
                        "tflite: tensor '" + t.name + "' of type " + std::string(type_name(t.type)) + " is not numeric");
  }
  return out;
}

}  // namespace faceguard::model::tflite
