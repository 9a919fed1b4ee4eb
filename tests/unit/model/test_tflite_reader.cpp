// TFLite reader on synthetic FlatBuffers built by tflite_builder.hpp: a good file parses into the expected
// typed graph; truncations, corrupted offsets, bad vector lengths and out-of-range indices are kModelError
// with a message naming the broken part, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "model/tflite_reader.hpp"
#include "tflite_builder.hpp"

namespace faceguard {
namespace {

namespace tfl = model::tflite;

template <typename T>
void poke(std::vector<std::uint8_t>& b, std::size_t pos, T v) {
  ASSERT_LE(pos + sizeof(T), b.size());
  std::memcpy(b.data() + pos, &v, sizeof(T));
}

// Parses and expects kModelError whose message contains `needle`.
void expect_rejected(std::vector<std::uint8_t> bytes, const std::string& needle) {
  auto r = tfl::parse_model(std::move(bytes));
  ASSERT_FALSE(r.ok()) << "accepted a file that should fail with '" << needle << "'";
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(TfliteReader, ParsesTheTinyModel) {
  const auto tiny = test::fb::tiny_model();
  auto r = tfl::parse_model(tiny.bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const tfl::Model& m = *r;
  EXPECT_EQ(m.version(), 3u);
  EXPECT_EQ(m.description(), "tiny test model");
  ASSERT_EQ(m.subgraphs().size(), 1u);
  const tfl::Graph& g = m.graph();
  EXPECT_EQ(g.name, "main");
  ASSERT_EQ(g.tensors.size(), 8u);
  EXPECT_EQ(g.inputs, std::vector<int>({0}));
  EXPECT_EQ(g.outputs, std::vector<int>({4}));

  EXPECT_EQ(g.tensors[0].name, "input");
  EXPECT_EQ(g.tensors[0].shape, std::vector<int>({1, 4, 4, 1}));
  EXPECT_EQ(g.tensors[0].type, tfl::TensorType::kFloat32);
  EXPECT_FALSE(g.tensors[0].is_constant());
  EXPECT_EQ(g.tensors[1].shape, std::vector<int>({1, 3, 3, 1}));
  ASSERT_TRUE(g.tensors[1].is_constant());
  auto filter = tfl::to_float(g.tensors[1]);
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(*filter, std::vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(g.tensors[5].type, tfl::TensorType::kFloat16);
  auto half = tfl::to_float(g.tensors[5]);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(*half, std::vector<float>({1.f, -2.f, 0.5f}));
  // Per-channel int8 along axis 0: row 0 (q - 1) * 0.5, row 1 (q + 1) * 2.
  const tfl::Tensor& q8 = g.tensors[6];
  EXPECT_EQ(q8.type, tfl::TensorType::kInt8);
  EXPECT_EQ(q8.quantization.scale, std::vector<float>({0.5f, 2.f}));
  EXPECT_EQ(q8.quantization.zero_point, std::vector<std::int64_t>({1, -1}));
  auto deq = tfl::to_float(q8);
  ASSERT_TRUE(deq.ok());
  EXPECT_EQ(*deq, std::vector<float>({1.f, 2.f, 0.f, 4.f}));
  EXPECT_FALSE(tfl::to_float(g.tensors[3]).ok()) << "an activation has no data to convert";

  ASSERT_EQ(g.operators.size(), 2u);
  const tfl::Operator& conv = g.operators[0];
  EXPECT_TRUE(conv.is(tfl::BuiltinOp::kConv2D)) << conv.code;  // from the old byte field
  EXPECT_EQ(conv.inputs, std::vector<int>({0, 1, 2}));
  EXPECT_EQ(conv.outputs, std::vector<int>({3}));
  EXPECT_EQ(conv.options.type, 1);
  EXPECT_EQ(conv.options.padding, tfl::Padding::kValid);
  EXPECT_EQ(conv.options.stride_w, 1);
  EXPECT_EQ(conv.options.stride_h, 1);
  EXPECT_EQ(conv.options.dilation_w, 1) << "absent field takes the schema default";
  EXPECT_EQ(conv.options.activation, tfl::Activation::kRelu);
  const tfl::Operator& add = g.operators[1];
  EXPECT_TRUE(add.is(tfl::BuiltinOp::kAdd)) << add.code;
  EXPECT_EQ(add.options.activation, tfl::Activation::kNone);
  EXPECT_EQ(tfl::op_name(add.code), "ADD");
  EXPECT_EQ(tfl::op_name(200), "BUILTIN_200");
}

TEST(TfliteReader, HalfToFloatCoversSpecialValues) {
  EXPECT_EQ(tfl::half_to_float(0x0000), 0.f);
  EXPECT_TRUE(std::signbit(tfl::half_to_float(0x8000)));
  EXPECT_EQ(tfl::half_to_float(0x7BFF), 65504.f);               // largest half
  EXPECT_EQ(tfl::half_to_float(0x0001), std::ldexp(1.f, -24));  // smallest subnormal
  EXPECT_EQ(tfl::half_to_float(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(tfl::half_to_float(0xFC00)));
  EXPECT_TRUE(std::isnan(tfl::half_to_float(0x7E00)));
}

TEST(TfliteReader, EveryTruncationIsRejected) {
  const auto tiny = test::fb::tiny_model();
  for (std::size_t n = 0; n < tiny.bytes.size(); ++n) {
    std::vector<std::uint8_t> cut(tiny.bytes.begin(), tiny.bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = tfl::parse_model(std::move(cut));
    ASSERT_FALSE(r.ok()) << "a file cut to " << n << " of " << tiny.bytes.size() << " bytes parsed";
    EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  }
}

TEST(TfliteReader, RejectsBadHeaderAndVersion) {
  const auto tiny = test::fb::tiny_model();
  auto b = tiny.bytes;
  b[4] = 'X';
  expect_rejected(b, "TFL3");
  b = tiny.bytes;
  poke<std::uint32_t>(b, 0, 0x7fffffff);
  expect_rejected(b, "points past the end");
  b = tiny.bytes;
  poke<std::uint32_t>(b, 0, 0);
  expect_rejected(b, "zero offset");
  expect_rejected({}, "too short");
  // Model.version is the model table's first field (placed right after its soffset).
  b = tiny.bytes;
  const std::uint32_t root = [&] { std::uint32_t v; std::memcpy(&v, b.data(), 4); return v; }();
  poke<std::uint32_t>(b, root + 4, 2);
  expect_rejected(b, "schema version 2");
}

TEST(TfliteReader, RejectsCorruptVtablesAndOffsets) {
  const auto tiny = test::fb::tiny_model();
  const std::uint32_t root = [&] { std::uint32_t v; std::memcpy(&v, tiny.bytes.data(), 4); return v; }();
  auto b = tiny.bytes;
  poke<std::int32_t>(b, root, static_cast<std::int32_t>(root + 100));  // vtable before the file start
  expect_rejected(b, "vtable offset");
  b = tiny.bytes;
  poke<std::int32_t>(b, root, -static_cast<std::int32_t>(b.size()));  // vtable past the end
  expect_rejected(b, "vtable offset");
  b = tiny.bytes;
  poke<std::uint16_t>(b, tiny.model_vtable, 3);  // odd vtable size
  expect_rejected(b, "vtable size");
  b = tiny.bytes;
  poke<std::uint16_t>(b, tiny.model_vtable + 2, 0xFFFF);  // table claims to run past the end
  expect_rejected(b, "past the end");
  b = tiny.bytes;
  poke<std::uint16_t>(b, tiny.model_vtable + 4, 2);  // version field overlapping the soffset... then reading
  expect_rejected(b, "field 0 lies outside the table");
  b = tiny.bytes;
  poke<std::uint16_t>(b, tiny.model_vtable + 2, 6);  // table too small for its fields
  expect_rejected(b, "lies outside the table");
}

TEST(TfliteReader, RejectsBadVectorLengths) {
  const auto tiny = test::fb::tiny_model();
  auto b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.tensors_vector, 0xFFFFFFFFu);
  expect_rejected(b, "tensors vector: length 4294967295 runs past the end");
  b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.input_shape_vector, 1u << 30);
  expect_rejected(b, "subgraph 0 tensor 0 shape vector");
  b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.filter_data_vector, 40);  // one float more than the file holds
  expect_rejected(b, "data vector: length 40 runs past the end");
  b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.filter_data_vector, 32);  // fits the file but not the [1,3,3,1] shape
  expect_rejected(b, "'filter' holds 32 bytes, its shape needs 36");
  b = tiny.bytes;
  poke<std::int32_t>(b, tiny.filter_shape_vector + 4, -3);
  expect_rejected(b, "negative dimension");
  b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.input_shape_vector, 9);  // rank 9 still fits in the file
  auto r = tfl::parse_model(b);
  ASSERT_FALSE(r.ok());
}

TEST(TfliteReader, RejectsOutOfRangeIndicesAndEnums) {
  const auto tiny = test::fb::tiny_model();
  auto b = tiny.bytes;
  poke<std::uint32_t>(b, tiny.opcode_index_field, 7);
  expect_rejected(b, "subgraph 0 operator 0: opcode index 7 of 2");
  b = tiny.bytes;
  poke<std::int32_t>(b, tiny.op_inputs_vector + 4, 8);
  expect_rejected(b, "inputs names tensor 8 of 8");
  b = tiny.bytes;
  poke<std::int32_t>(b, tiny.op_inputs_vector + 8, -2);
  expect_rejected(b, "inputs names tensor -2");
  b = tiny.bytes;
  poke<std::int32_t>(b, tiny.conv_stride_field, 0);
  expect_rejected(b, "stride_w 0 is not positive");
  b = tiny.bytes;
  b[tiny.tensor0_type_field] = 42;
  expect_rejected(b, "unknown tensor type 42");
}

// Random byte flips must never crash; whatever parses keeps its invariants (data matches shape and type).
TEST(TfliteReader, SurvivesRandomCorruption) {
  const auto tiny = test::fb::tiny_model();
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto b = tiny.bytes;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    auto r = tfl::parse_model(std::move(b));
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kModelError);
      continue;
    }
    ++accepted;
    for (const auto& t : r->graph().tensors) {
      const std::size_t es = tfl::type_size(t.type);
      if (t.is_constant() && es) {
        EXPECT_EQ(t.data.size(), t.elements() * es);
      }
    }
  }
  // Flips in names, float payloads and padding are harmless, so some files must still parse.
  EXPECT_GT(accepted, 0);
}

TEST(TfliteReader, LoadModelReportsMissingFile) {
  auto r = tfl::load_model("/nonexistent/dir/model.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
}

}  // namespace
}  // namespace faceguard
