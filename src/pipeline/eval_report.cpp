// Evaluation outputs: the per-pair scores CSV and the ROC curve as a self-contained SVG.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "faceguard/eval.hpp"

namespace faceguard::eval {
namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

std::string scores_csv(const PairList& pairs, std::span<const ScoredPair> scored) {
  std::ostringstream out;
  out << "a,b,same,distance\n";
  const std::size_t n = std::min(pairs.pairs.size(), scored.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = pairs.pairs[i];
    out << csv_field(p.a.string()) << ',' << csv_field(p.b.string()) << ',' << (p.same ? 1 : 0) << ','
        << (std::isfinite(scored[i].distance) ? fmt("%.6f", scored[i].distance) : std::string("inf")) << '\n';
  }
  return out.str();
}

std::string roc_svg(const Roc& roc, std::string_view title) {
  // Plot area in SVG user units; FAR on log10 axis [1e-4, 1], TAR linear [0, 1].
  constexpr double kW = 640, kH = 480, kLeft = 70, kRight = 20, kTop = 40, kBottom = 60;
  constexpr double kLogMin = -4.0;
  const double pw = kW - kLeft - kRight;
  const double ph = kH - kTop - kBottom;
  auto x_of = [&](double far) {
    const double lf = far <= 0.0 ? kLogMin : std::max(kLogMin, std::log10(far));
    return kLeft + (lf - kLogMin) / -kLogMin * pw;
  };
  auto y_of = [&](double tar) { return kTop + (1.0 - tar) * ph; };

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH << "\" viewBox=\"0 0 "
    << kW << ' ' << kH << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(title)
    << "</text>\n";
  // Grid: decades of FAR, tenths of TAR.
  for (int d = static_cast<int>(kLogMin); d <= 0; ++d) {
    const double x = x_of(std::pow(10.0, d));
    s << "<line x1=\"" << x << "\" y1=\"" << kTop << "\" x2=\"" << x << "\" y2=\"" << kTop + ph
      << "\" stroke=\"#ddd\"/>\n";
    s << "<text x=\"" << x << "\" y=\"" << kTop + ph + 18 << "\" text-anchor=\"middle\">1e" << d << "</text>\n";
  }
  for (int t = 0; t <= 10; ++t) {
    const double y = y_of(t / 10.0);
    s << "<line x1=\"" << kLeft << "\" y1=\"" << y << "\" x2=\"" << kLeft + pw << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/>\n";
    s << "<text x=\"" << kLeft - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << fmt("%.1f", t / 10.0)
      << "</text>\n";
  }
  s << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  s << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kH - 18 << "\" text-anchor=\"middle\">false accept rate (log)"
    << "</text>\n";
  s << "<text x=\"18\" y=\"" << kTop + ph / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
    << kTop + ph / 2 << ")\">true accept rate</text>\n";
  // The curve as a staircase in the order of the points.
  s << "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"";
  for (const auto& p : roc.points) s << fmt("%.2f", x_of(p.far)) << ',' << fmt("%.2f", y_of(p.tar)) << ' ';
  s << "\"/>\n";
  s << "<text x=\"" << kLeft + pw - 10 << "\" y=\"" << kTop + ph - 30 << "\" text-anchor=\"end\">AUC "
    << fmt("%.4f", roc.auc) << "</text>\n";
  s << "<text x=\"" << kLeft + pw - 10 << "\" y=\"" << kTop + ph - 12 << "\" text-anchor=\"end\">EER "
    << fmt("%.2f%%", roc.eer * 100.0) << " (" << roc.positives << " same, " << roc.negatives
    << " different pairs)</text>\n";
  s << "</svg>\n";
  return s.str();
}

Status write_text_file(const std::filesystem::path& path, std::string_view text) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot create " + path.parent_path().string() + ": " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIoError, "cannot write " + path.string());
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return make_error(ErrorCode::kIoError, "cannot write " + path.string());
  return ok_status();
}

}  // namespace faceguard::eval
