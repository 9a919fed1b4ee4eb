// PASCAL VOC annotation files: a small, bounds-checked XML scanner for the subset the VOC devkit and labelImg
// write, and the mapping from its element tree to an Annotation. Every read goes through Scanner::peek() or
// a std::string_view::substr/find, so no input can read past the buffer; the fuzz target fuzz_voc checks it.
#include "pipeline/voc.hpp"

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace faceguard::eval::voc {
namespace {

struct Node {
  std::string name;
  std::string text;           // character data directly inside the element (entities decoded)
  std::vector<int> children;  // indices into the node list
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;  // non-ASCII name characters, taken as they are
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  // The element tree; nodes[0] is the root.
  Result<std::vector<Node>> parse() {
    if (starts("\xEF\xBB\xBF")) p_ += 3;  // UTF-8 byte order mark
    FG_TRY_STATUS(skip_misc());
    if (peek() != '<') return fail("expected the root element");
    bool self_closing = false;
    FG_TRY_STATUS(start_tag(-1, self_closing));
    std::vector<int> open;
    if (!self_closing) open.push_back(0);
    while (!open.empty()) {
      const int top = open.back();
      if (p_ >= s_.size()) return fail("unclosed <" + nodes_[static_cast<std::size_t>(top)].name + ">");
      if (starts("<!--")) {
        FG_TRY_STATUS(skip_past("-->", "comment"));
      } else if (starts("<![CDATA[")) {
        p_ += 9;
        const auto end = s_.find("]]>", p_);
        if (end == std::string_view::npos) return fail("unterminated CDATA section");
        nodes_[static_cast<std::size_t>(top)].text.append(s_.substr(p_, end - p_));
        p_ = end + 3;
      } else if (starts("<?")) {
        FG_TRY_STATUS(skip_past("?>", "processing instruction"));
      } else if (starts("<!")) {
        return fail("markup declarations are not supported");
      } else if (starts("</")) {
        p_ += 2;
        const std::string name = read_name();
        if (name.empty()) return fail("expected a tag name after '</'");
        skip_space();
        if (peek() != '>') return fail("expected '>' to end </" + name);
        ++p_;
        if (name != nodes_[static_cast<std::size_t>(top)].name)
          return fail("</" + name + "> closes <" + nodes_[static_cast<std::size_t>(top)].name + ">");
        open.pop_back();
      } else if (peek() == '<') {
        if (static_cast<int>(open.size()) >= kMaxDepth) return fail("elements nested too deeply");
        FG_TRY_STATUS(start_tag(top, self_closing));
        if (!self_closing) open.push_back(static_cast<int>(nodes_.size()) - 1);
      } else {
        FG_TRY_STATUS(text(nodes_[static_cast<std::size_t>(top)].text));
      }
    }
    FG_TRY_STATUS(skip_misc());
    if (p_ < s_.size()) return fail("content after the root element");
    return std::move(nodes_);
  }

 private:
  char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  bool starts(std::string_view t) const { return p_ <= s_.size() && s_.substr(p_, t.size()) == t; }
  void skip_space() {
    while (p_ < s_.size() && is_space(s_[p_])) ++p_;
  }

  Error fail(const std::string& what) const {
    return make_error(ErrorCode::kCorruptData, "VOC annotation: " + what + " (at byte " + std::to_string(p_) + ")");
  }

  Status skip_past(std::string_view end, const char* what) {
    const auto at = s_.find(end, p_);
    if (at == std::string_view::npos) return fail(std::string("unterminated ") + what);
    p_ = at + end.size();
    return ok_status();
  }

  // Whitespace, comments and processing instructions (the prolog, and after the root).
  Status skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) {
        FG_TRY_STATUS(skip_past("?>", "processing instruction"));
      } else if (starts("<!--")) {
        FG_TRY_STATUS(skip_past("-->", "comment"));
      } else if (starts("<!")) {
        return fail("document type declarations are not supported");
      } else {
        return ok_status();
      }
    }
  }

  std::string read_name() {
    const std::size_t b = p_;
    if (!is_name_start(peek())) return {};
    while (p_ < s_.size() && is_name_char(s_[p_])) ++p_;
    return std::string(s_.substr(b, p_ - b));
  }

  // At '<' of a start tag: appends the node (a child of parent, or the root when parent < 0); attributes
  // are checked for syntax and dropped (VOC puts nothing in them that this reader needs).
  Status start_tag(int parent, bool& self_closing) {
    ++p_;
    std::string name = read_name();
    if (name.empty()) return fail("expected a tag name after '<'");
    if (nodes_.size() >= static_cast<std::size_t>(kMaxNodes)) return fail("too many elements");
    for (;;) {
      const bool spaced = p_ < s_.size() && is_space(s_[p_]);
      skip_space();
      if (starts("/>")) {
        p_ += 2;
        self_closing = true;
        break;
      }
      if (peek() == '>') {
        ++p_;
        self_closing = false;
        break;
      }
      if (!spaced) return fail("malformed tag <" + name + ">");
      if (read_name().empty()) return fail("malformed attribute in <" + name + ">");
      skip_space();
      if (peek() != '=') return fail("expected '=' in an attribute of <" + name + ">");
      ++p_;
      skip_space();
      const char q = peek();
      if (q != '"' && q != '\'') return fail("expected a quoted attribute value in <" + name + ">");
      ++p_;
      const auto end = s_.find(q, p_);
      if (end == std::string_view::npos) return fail("unterminated attribute value in <" + name + ">");
      if (s_.substr(p_, end - p_).find('<') != std::string_view::npos) return fail("'<' in an attribute value");
      p_ = end + 1;
    }
    nodes_.push_back(Node{std::move(name), {}, {}});
    if (parent >= 0) nodes_[static_cast<std::size_t>(parent)].children.push_back(static_cast<int>(nodes_.size()) - 1);
    return ok_status();
  }

  // Character data up to the next '<', entities decoded.
  Status text(std::string& out) {
    while (p_ < s_.size() && s_[p_] != '<') {
      if (s_[p_] != '&') {
        out += s_[p_++];
        continue;
      }
      const auto semi = s_.find(';', p_);
      if (semi == std::string_view::npos || semi - p_ > 12) return fail("malformed entity reference");
      const std::string_view ent = s_.substr(p_ + 1, semi - p_ - 1);
      if (ent == "amp") {
        out += '&';
      } else if (ent == "lt") {
        out += '<';
      } else if (ent == "gt") {
        out += '>';
      } else if (ent == "quot") {
        out += '"';
      } else if (ent == "apos") {
        out += '\'';
      } else if (ent.size() >= 2 && ent[0] == '#') {
        const bool hex = ent[1] == 'x';
        const std::string_view digits = ent.substr(hex ? 2 : 1);
        unsigned cp = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
        if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || cp == 0 ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          return fail("bad character reference &" + std::string(ent) + ";");
        append_utf8(out, cp);
      } else {
        return fail("unknown entity &" + std::string(ent) + ";");
      }
      p_ = semi + 1;
    }
    return ok_status();
  }

  std::string_view s_;
  std::size_t p_ = 0;
  std::vector<Node> nodes_;
};

const Node* child(const std::vector<Node>& nodes, const Node& n, std::string_view name) {
  for (int c : n.children)
    if (nodes[static_cast<std::size_t>(c)].name == name) return &nodes[static_cast<std::size_t>(c)];
  return nullptr;
}

Error bad(const std::string& what) { return make_error(ErrorCode::kCorruptData, "VOC annotation: " + what); }

// A non-negative integer (image sizes): at most 10^6, since no photo is a million pixels on a side.
Result<int> parse_size(const Node* n, const char* what) {
  if (n == nullptr) return 0;
  const std::string_view t = trim(n->text);
  int v = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 0 || v > 1'000'000)
    return bad(std::string("<") + what + "> is not a size: '" + std::string(t.substr(0, 32)) + "'");
  return v;
}

Result<bool> parse_flag(const Node* n, const char* what, std::size_t object) {
  if (n == nullptr) return false;
  const std::string_view t = trim(n->text);
  if (t == "0") return false;
  if (t == "1") return true;
  return bad("object " + std::to_string(object) + ": <" + what + "> must be 0 or 1, not '" +
             std::string(t.substr(0, 32)) + "'");
}

}  // namespace

Result<Annotation> parse_annotation(std::string_view xml) {
  if (xml.size() > kMaxBytes) return bad("file larger than " + std::to_string(kMaxBytes) + " bytes");
  try {
    Scanner scanner(xml);
    FG_ASSIGN_OR_RETURN(const std::vector<Node> nodes, scanner.parse());
    const Node& root = nodes[0];
    if (root.name != "annotation") return bad("the root element is <" + root.name + ">, not <annotation>");
    Annotation a;
    if (const Node* f = child(nodes, root, "filename")) a.filename = std::string(trim(f->text));
    if (const Node* size = child(nodes, root, "size")) {
      FG_ASSIGN_OR_RETURN(a.width, parse_size(child(nodes, *size, "width"), "width"));
      FG_ASSIGN_OR_RETURN(a.height, parse_size(child(nodes, *size, "height"), "height"));
      FG_ASSIGN_OR_RETURN(a.depth, parse_size(child(nodes, *size, "depth"), "depth"));
    }
    for (int c : root.children) {
      const Node& o = nodes[static_cast<std::size_t>(c)];
      if (o.name != "object") continue;
      const std::size_t index = a.objects.size();
      const std::string where = "object " + std::to_string(index);
      Object obj;
      const Node* name = child(nodes, o, "name");
      if (name == nullptr || trim(name->text).empty()) return bad(where + " has no <name>");
      obj.name = std::string(trim(name->text));
      const Node* box = child(nodes, o, "bndbox");
      if (box == nullptr) return bad(where + " (" + obj.name + ") has no <bndbox>");
      double* fields[4] = {&obj.xmin, &obj.ymin, &obj.xmax, &obj.ymax};
      const char* names[4] = {"xmin", "ymin", "xmax", "ymax"};
      for (int k = 0; k < 4; ++k) {
        const Node* v = child(nodes, *box, names[k]);
        if (v == nullptr) return bad(where + " has no <" + names[k] + ">");
        const std::string_view t = trim(v->text);
        double d = 0;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
        // 1e7 px: far outside any image, yet small enough that box arithmetic in float stays exact enough.
        if (t.empty() || ec != std::errc() || end != t.data() + t.size() || !std::isfinite(d) || std::fabs(d) > 1e7)
          return bad(where + ": <" + names[k] + "> is not a number: '" + std::string(t.substr(0, 32)) + "'");
        *fields[k] = d;
      }
      FG_ASSIGN_OR_RETURN(obj.difficult, parse_flag(child(nodes, o, "difficult"), "difficult", index));
      FG_ASSIGN_OR_RETURN(obj.truncated, parse_flag(child(nodes, o, "truncated"), "truncated", index));
      a.objects.push_back(std::move(obj));
    }
    return a;
  } catch (const std::exception& e) {  // std::bad_alloc on a hostile file: a value, never an escape
    return make_error(ErrorCode::kInternal, std::string("VOC annotation: ") + e.what());
  }
}

}  // namespace faceguard::eval::voc
