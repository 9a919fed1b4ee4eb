// Pair lists for verification evaluation: LFW's pairs*.txt format and a plain a,b,same CSV.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <optional>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "faceguard/eval.hpp"

namespace faceguard::eval {
namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    std::size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool parse_int(std::string_view s, int& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size();
}

// Lines without their terminator ("\n" or "\r\n"); a last line without "\n" counts.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    start = end + 1;
  }
  return out;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

Error line_error(std::size_t line_no, const std::string& what) {
  return make_error(ErrorCode::kCorruptData, "line " + std::to_string(line_no) + ": " + what);
}

// One CSV record split into fields; handles "quoted, fields" with "" as an escaped quote.
bool split_csv(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string cur;
  bool quoted = false;
  bool was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' && cur.empty() && !was_quoted) {
      quoted = true;
      was_quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
      was_quoted = false;
    } else {
      cur.push_back(c);
    }
  }
  if (quoted) return false;
  fields.push_back(std::move(cur));
  for (auto& f : fields) {
    auto b = f.find_first_not_of(" \t");
    auto e = f.find_last_not_of(" \t");
    f = b == std::string::npos ? std::string{} : f.substr(b, e - b + 1);
  }
  return true;
}

std::optional<bool> parse_same(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  // "same"/"different" are not flags: "same" is the usual name of the column in the header line.
  if (s == "1" || s == "true" || s == "yes") return true;
  if (s == "0" || s == "false" || s == "no") return false;
  return std::nullopt;
}

}  // namespace

std::filesystem::path lfw_image_path(const std::filesystem::path& images_dir, std::string_view name, int index) {
  char num[16];
  std::snprintf(num, sizeof num, "%04d", index);
  const std::string n(name);
  return images_dir / n / (n + "_" + num + ".jpg");
}

Result<PairList> parse_lfw_pairs(std::string_view text, const std::filesystem::path& images_dir) {
  const auto lines = lines_of(text);
  std::size_t li = 0;
  while (li < lines.size() && blank(lines[li])) ++li;
  if (li == lines.size()) return make_error(ErrorCode::kCorruptData, "empty pair list");
  const auto head = split_ws(lines[li]);
  int folds = 1;
  int per = 0;
  bool has_folds = false;
  if (head.size() == 1 && parse_int(head[0], per)) {
  } else if (head.size() == 2 && parse_int(head[0], folds) && parse_int(head[1], per)) {
    has_folds = true;
  } else {
    return line_error(li + 1, "expected a count (\"N\") or \"folds N\" header");
  }
  if (folds < 1 || per < 1) return line_error(li + 1, "counts must be positive");
  ++li;

  PairList out;
  out.folds = has_folds ? folds : 0;
  out.pairs.reserve(static_cast<std::size_t>(folds) * per * 2);
  // Each fold: `per` matched lines, then `per` mismatched lines (LFW README, "pairs.txt").
  for (int f = 0; f < folds; ++f) {
    for (int k = 0; k < 2 * per; ++k) {
      while (li < lines.size() && blank(lines[li])) ++li;
      if (li == lines.size()) {
        return make_error(ErrorCode::kCorruptData, "pair list ends after " + std::to_string(out.pairs.size()) +
                                                       " pairs; the header promises " +
                                                       std::to_string(folds * per * 2));
      }
      const auto tok = split_ws(lines[li]);
      const bool matched = k < per;
      Pair p;
      p.same = matched;
      p.fold = has_folds ? f : -1;
      int i = 0;
      int j = 0;
      if (matched) {
        if (tok.size() != 3 || !parse_int(tok[1], i) || !parse_int(tok[2], j)) {
          return line_error(li + 1, "expected a matched pair `name i j`");
        }
        p.a = lfw_image_path(images_dir, tok[0], i);
        p.b = lfw_image_path(images_dir, tok[0], j);
      } else {
        if (tok.size() != 4 || !parse_int(tok[1], i) || !parse_int(tok[3], j)) {
          return line_error(li + 1, "expected a mismatched pair `name1 i name2 j`");
        }
        p.a = lfw_image_path(images_dir, tok[0], i);
        p.b = lfw_image_path(images_dir, tok[2], j);
      }
      if (i < 1 || j < 1) return line_error(li + 1, "image numbers start at 1");
      out.pairs.push_back(std::move(p));
      ++li;
    }
  }
  while (li < lines.size() && blank(lines[li])) ++li;
  if (li != lines.size()) return line_error(li + 1, "more pairs than the header promises");
  return out;
}

Result<PairList> parse_csv_pairs(std::string_view text, const std::filesystem::path& images_dir) {
  const auto lines = lines_of(text);
  PairList out;
  std::vector<std::string> fields;
  bool first = true;
  for (std::size_t li = 0; li < lines.size(); ++li) {
    if (blank(lines[li])) continue;
    if (!split_csv(lines[li], fields)) return line_error(li + 1, "unterminated quote");
    if (fields.size() != 3) return line_error(li + 1, "expected 3 fields a,b,same");
    auto same = parse_same(fields[2]);
    if (!same) {
      if (first) {  // a header line such as "a,b,same"
        first = false;
        continue;
      }
      return line_error(li + 1, "same must be 1/0, true/false or yes/no");
    }
    first = false;
    if (fields[0].empty() || fields[1].empty()) return line_error(li + 1, "empty image path");
    Pair p;
    const std::filesystem::path a(fields[0]);
    const std::filesystem::path b(fields[1]);
    p.a = a.is_absolute() ? a : images_dir / a;
    p.b = b.is_absolute() ? b : images_dir / b;
    p.same = *same;
    out.pairs.push_back(std::move(p));
  }
  if (out.pairs.empty()) return make_error(ErrorCode::kCorruptData, "no pairs in the CSV");
  return out;
}

Result<PairList> load_pairs(const std::filesystem::path& file, const std::filesystem::path& images_dir) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open pair list " + file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIoError, "cannot read " + file.string());
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  auto r = ext == ".csv" ? parse_csv_pairs(ss.str(), images_dir) : parse_lfw_pairs(ss.str(), images_dir);
  if (!r) return make_error(r.error().code, file.string() + ": " + r.error().message);
  return r;
}

std::vector<std::filesystem::path> unique_images(const PairList& pairs) {
  std::vector<std::filesystem::path> out;
  std::unordered_set<std::string> seen;
  for (const auto& p : pairs.pairs) {
    for (const auto* path : {&p.a, &p.b}) {
      if (seen.insert(path->string()).second) out.push_back(*path);
    }
  }
  return out;
}

}  // namespace faceguard::eval
