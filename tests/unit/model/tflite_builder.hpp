// A tiny FlatBuffer writer for the TFLite reader tests: lays out tables, vectors and strings front to
// back (parents before children, offsets patched once the child is placed), so a test can build small
// .tflite files and know where each field lies, to corrupt it on purpose. Written for the tests from the
// FlatBuffers layout rules (tflite_reader.hpp), not a general-purpose builder.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace faceguard::test::fb {

class Writer {
 public:
  // Scalar or offset field of a table. Offset fields (offset = true) get a placeholder to patch().
  struct Field {
    int id = 0;
    int size = 4;             // 1, 2, 4 or 8 bytes
    std::uint64_t value = 0;  // little-endian truncation to `size`
    bool offset = false;
  };

  std::vector<std::uint8_t>& bytes() { return b_; }
  std::size_t pos() const { return b_.size(); }
  void align(std::size_t n) {
    while (b_.size() % n) b_.push_back(0);
  }
  template <typename T>
  void put(T v) {
    const std::size_t p = b_.size();
    b_.resize(p + sizeof(T));
    std::memcpy(b_.data() + p, &v, sizeof(T));
  }
  template <typename T>
  void put_at(std::size_t p, T v) {
    std::memcpy(b_.data() + p, &v, sizeof(T));
  }
  // Makes the uoffset32 at `field_pos` point at `target` (which must lie after it).
  void patch(std::size_t field_pos, std::size_t target) {
    put_at<std::uint32_t>(field_pos, static_cast<std::uint32_t>(target - field_pos));
  }

  // Writes a vtable followed by its table; returns the table position. field_pos(id) gives each field's
  // position in the last table written.
  std::size_t table(const std::vector<Field>& fields) {
    int max_id = -1;
    for (const auto& f : fields) max_id = std::max(max_id, f.id);
    // Table layout: soffset32, then fields in the given order, each aligned to its size.
    std::vector<std::uint16_t> offs(static_cast<std::size_t>(max_id + 1), 0);
    std::size_t tsize = 4;
    std::vector<std::size_t> at(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::size_t s = static_cast<std::size_t>(fields[i].size);
      tsize = (tsize + s - 1) / s * s;
      at[i] = tsize;
      offs[static_cast<std::size_t>(fields[i].id)] = static_cast<std::uint16_t>(tsize);
      tsize += s;
    }
    align(2);
    const std::size_t vt = pos();
    put<std::uint16_t>(static_cast<std::uint16_t>(4 + 2 * offs.size()));
    put<std::uint16_t>(static_cast<std::uint16_t>(tsize));
    for (std::uint16_t o : offs) put<std::uint16_t>(o);
    align(8);
    const std::size_t t = pos();
    b_.resize(t + tsize, 0);
    put_at<std::int32_t>(t, static_cast<std::int32_t>(t - vt));
    fields_.clear();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::uint64_t v = fields[i].value;
      std::memcpy(b_.data() + t + at[i], &v, static_cast<std::size_t>(fields[i].size));
      fields_[fields[i].id] = t + at[i];
    }
    last_vtable_ = vt;
    return t;
  }
  std::size_t field_pos(int id) const { return fields_.at(id); }
  std::size_t last_vtable() const { return last_vtable_; }

  // A vector of scalars; returns the position of its length word.
  template <typename T>
  std::size_t vec(const std::vector<T>& v) {
    align(std::max<std::size_t>(4, sizeof(T)));
    if (sizeof(T) == 8 && (pos() + 4) % 8) put<std::uint32_t>(0);  // 8-byte elements after the length
    const std::size_t p = pos();
    put<std::uint32_t>(static_cast<std::uint32_t>(v.size()));
    for (const T& x : v) put<T>(x);
    return p;
  }
  std::size_t string(const std::string& s) {
    align(4);
    const std::size_t p = pos();
    put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    for (char c : s) put<char>(c);
    put<char>(0);
    return p;
  }
  // A vector of `n` offsets (to tables written later); returns the length word's position. Element i
  // lies at result + 4 + 4 * i.
  std::size_t offsets(std::size_t n) {
    align(4);
    const std::size_t p = pos();
    put<std::uint32_t>(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) put<std::uint32_t>(0);
    return p;
  }

 private:
  std::vector<std::uint8_t> b_;
  std::map<int, std::size_t> fields_;
  std::size_t last_vtable_ = 0;
};

// A small but complete TFLite model, with the positions of the parts tests like to break.
struct TinyModel {
  std::vector<std::uint8_t> bytes;
  std::size_t root_offset = 0;          // uoffset at byte 0
  std::size_t model_vtable = 0;
  std::size_t tensors_vector = 0;       // length word of subgraph 0's tensors
  std::size_t input_shape_vector = 0;   // length word of tensor 0's shape
  std::size_t filter_shape_vector = 0;  // length word of tensor 1's shape
  std::size_t opcode_index_field = 0;   // operator 0's opcode_index
  std::size_t op_inputs_vector = 0;     // length word of operator 0's inputs
  std::size_t conv_stride_field = 0;    // Conv2DOptions.stride_w of operator 0
  std::size_t filter_data_vector = 0;   // length word of buffer 1's data
  std::size_t tensor0_type_field = 0;
};

// input [1,4,4,1] -> CONV_2D(filter [1,3,3,1] = 1..9, bias [1] = 0.5, VALID, stride 1, fused RELU)
// -> [1,2,2,1] -> ADD with a constant [1] = -1 -> output [1,2,2,1] "out". Extra constant tensors:
// 5: FLOAT16 [3] = {1, -2, 0.5}; 6: INT8 [2,2] per-channel (axis 0) scales {0.5, 2}, zero points {1, -1},
// q = {3, 5, -1, 1}. The file ends with the filter's data (so every truncation cuts a referenced byte).
inline TinyModel tiny_model() {
  Writer w;
  TinyModel m;
  w.put<std::uint32_t>(0);  // root offset, patched below
  w.put<char>('T'), w.put<char>('F'), w.put<char>('L'), w.put<char>('3');

  const std::size_t model = w.table({{0, 4, 3}, {1, 4, 0, true}, {2, 4, 0, true}, {3, 4, 0, true}, {4, 4, 0, true}});
  m.model_vtable = w.last_vtable();
  const std::size_t f_codes = w.field_pos(1), f_graphs = w.field_pos(2), f_desc = w.field_pos(3), f_bufs = w.field_pos(4);
  w.patch(0, model);

  w.patch(f_desc, w.string("tiny test model"));

  // operator_codes: 0 CONV_2D (old byte field), 1 ADD (new int field, byte field 0).
  const std::size_t codes = w.offsets(2);
  w.patch(f_codes, codes);
  w.patch(codes + 4, w.table({{0, 1, 3}, {2, 4, 1}}));
  w.patch(codes + 8, w.table({{0, 1, 0}, {2, 4, 1}, {3, 4, 0}}));

  // subgraphs: one.
  const std::size_t graphs = w.offsets(1);
  w.patch(f_graphs, graphs);
  const std::size_t g = w.table({{0, 4, 0, true}, {1, 4, 0, true}, {2, 4, 0, true}, {3, 4, 0, true}, {4, 4, 0, true}});
  w.patch(graphs + 4, g);
  const std::size_t f_tensors = w.field_pos(0), f_in = w.field_pos(1), f_out = w.field_pos(2), f_ops = w.field_pos(3),
                    f_name = w.field_pos(4);
  w.patch(f_in, w.vec<std::int32_t>({0}));
  w.patch(f_out, w.vec<std::int32_t>({4}));
  w.patch(f_name, w.string("main"));

  struct TensorSpec {
    std::vector<std::int32_t> shape;
    std::int8_t type;
    std::uint32_t buffer;
    std::string name;
    bool quant = false;
  };
  const std::vector<TensorSpec> specs = {{{1, 4, 4, 1}, 0, 0, "input"}, {{1, 3, 3, 1}, 0, 1, "filter"},
                                         {{1}, 0, 2, "bias"},           {{1, 2, 2, 1}, 0, 0, "conv"},
                                         {{1, 2, 2, 1}, 0, 0, "out"},   {{3}, 1, 3, "half"},
                                         {{2, 2}, 9, 4, "q8", true},    {{1}, 0, 5, "minus_one"}};
  const std::size_t tensors = w.offsets(specs.size());
  m.tensors_vector = tensors;
  w.patch(f_tensors, tensors);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    std::vector<Writer::Field> fields = {{0, 4, 0, true}, {1, 1, static_cast<std::uint8_t>(s.type)}, {2, 4, s.buffer}, {3, 4, 0, true}};
    if (s.quant) fields.push_back({4, 4, 0, true});
    const std::size_t t = w.table(fields);
    if (i == 0) m.tensor0_type_field = w.field_pos(1);
    const std::size_t fs = w.field_pos(0), fn = w.field_pos(3), fq = s.quant ? w.field_pos(4) : 0;
    w.patch(tensors + 4 + 4 * i, t);
    const std::size_t sv = w.vec<std::int32_t>(s.shape);
    if (i == 0) m.input_shape_vector = sv;
    if (i == 1) m.filter_shape_vector = sv;
    w.patch(fs, sv);
    w.patch(fn, w.string(s.name));
    if (s.quant) {
      const std::size_t q = w.table({{2, 4, 0, true}, {3, 4, 0, true}, {6, 4, 0}});
      const std::size_t fsc = w.field_pos(2), fzp = w.field_pos(3);
      w.patch(fq, q);
      w.patch(fsc, w.vec<float>({0.5f, 2.f}));
      w.patch(fzp, w.vec<std::int64_t>({1, -1}));
    }
  }

  // operators: CONV_2D(0, 1, 2) -> 3 with Conv2DOptions; ADD(3, 7) -> 4 with AddOptions.
  const std::size_t ops = w.offsets(2);
  w.patch(f_ops, ops);
  {
    const std::size_t op = w.table({{0, 4, 0}, {1, 4, 0, true}, {2, 4, 0, true}, {3, 1, 1}, {4, 4, 0, true}});
    m.opcode_index_field = w.field_pos(0);
    const std::size_t fi = w.field_pos(1), fo = w.field_pos(2), fopt = w.field_pos(4);
    w.patch(ops + 4, op);
    m.op_inputs_vector = w.vec<std::int32_t>({0, 1, 2});
    w.patch(fi, m.op_inputs_vector);
    w.patch(fo, w.vec<std::int32_t>({3}));
    // Conv2DOptions: padding VALID, stride_w 1, stride_h 1, fused RELU.
    const std::size_t opt = w.table({{0, 1, 1}, {1, 4, 1}, {2, 4, 1}, {3, 1, 1}});
    m.conv_stride_field = w.field_pos(1);
    w.patch(fopt, opt);
  }
  {
    const std::size_t op = w.table({{0, 4, 1}, {1, 4, 0, true}, {2, 4, 0, true}, {3, 1, 11}, {4, 4, 0, true}});
    const std::size_t fi = w.field_pos(1), fo = w.field_pos(2), fopt = w.field_pos(4);
    w.patch(ops + 8, op);
    w.patch(fi, w.vec<std::int32_t>({3, 7}));
    w.patch(fo, w.vec<std::int32_t>({4}));
    w.patch(fopt, w.table({{0, 1, 0}}));
  }

  // buffers: 0 empty, 1 filter, 2 bias, 3 half, 4 q8, 5 minus_one. The filter's data is written last.
  const std::size_t bufs = w.offsets(6);
  w.patch(f_bufs, bufs);
  std::size_t data_field[6] = {};
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t b = i == 0 ? w.table({}) : w.table({{0, 4, 0, true}});
    if (i) data_field[i] = w.field_pos(0);
    w.patch(bufs + 4 + 4 * i, b);
  }
  auto bytes_of = [](const std::vector<float>& v) {
    std::vector<std::uint8_t> r(v.size() * 4);
    std::memcpy(r.data(), v.data(), r.size());
    return r;
  };
  w.patch(data_field[2], w.vec<std::uint8_t>(bytes_of({0.5f})));
  // half: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800.
  w.patch(data_field[3], w.vec<std::uint8_t>({0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38}));
  w.patch(data_field[4], w.vec<std::uint8_t>({3, 5, 0xFF, 1}));
  w.patch(data_field[5], w.vec<std::uint8_t>(bytes_of({-1.f})));
  m.filter_data_vector = w.vec<std::uint8_t>(bytes_of({1, 2, 3, 4, 5, 6, 7, 8, 9}));
  w.patch(data_field[1], m.filter_data_vector);
  m.root_offset = 0;
  m.bytes = std::move(w.bytes());
  return m;
}

}  // namespace faceguard::test::fb
