// export_audit_log: JSON lines for an auditor, with the EU AI Act Art. 12(3) fields on search results.
//
// Art. 12(3) (remote biometric identification systems) asks the logs to record at least: (a) the period of
// each use (start and end date and time), (b) the reference database checked, (c) the input data that led to
// a match, (d) the identification of the natural persons who verified the results (Art. 14(5)).
#include <map>
#include <ostream>
#include <set>

#include "audit/audit_format.hpp"
#include "faceguard/audit.hpp"
#include "faceguard/policy.hpp"

namespace faceguard {

using nlohmann::json;

Result<std::size_t> export_audit_log(const std::filesystem::path& log, std::ostream& out,
                                     const AuditExportOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(log, ec)) return make_error(ErrorCode::kNotFound, "no audit log at " + log.string());
  auto opened = AuditLog::open(log);  // no key: reading only
  if (!opened) return opened.error();
  FG_ASSIGN_OR_RETURN(std::vector<AuditRecord> records, opened->read_all());

  std::optional<TimePoint> from, to;
  if (!options.from.empty()) {
    FG_ASSIGN_OR_RETURN(Timestamp t, parse_timestamp(options.from));
    from = t.utc;
  }
  if (!options.to.empty()) {
    FG_ASSIGN_OR_RETURN(Timestamp t, parse_timestamp(options.to));
    to = t.utc;
  }

  // Pass 1: who confirmed which match, and when each decision was taken (start of the use).
  std::map<std::string, std::vector<json>> verifiers;
  std::map<std::uint64_t, std::string> decision_time;
  for (const auto& r : records) {
    json b = json::parse(r.body_json, nullptr, false);
    if (b.is_discarded()) continue;
    if (r.kind == "decision") decision_time[r.seq] = r.time;
    if (r.kind == "review" && b.value("verdict", "") == "confirm" && b.contains("match_id") && b["match_id"].is_string())
      verifiers[b["match_id"].get<std::string>()].push_back(
          {{"reviewer", b.value("reviewer", "")}, {"time", r.time}});
  }

  std::size_t written = 0;
  for (const auto& r : records) {
    auto t = parse_timestamp(r.time);
    if (t && ((from && t->utc < *from) || (to && t->utc > *to))) continue;
    json b = json::parse(r.body_json, nullptr, false);
    json line{{"seq", r.seq}, {"time", r.time}, {"kind", r.kind}, {"body", b}, {"hash", r.hash}};
    if (r.kind == "result" && b.is_object()) {
      json art12;
      const auto dseq = b.value("decision_seq", std::uint64_t{0});
      art12["period_of_use"] = {{"start", decision_time.count(dseq) ? decision_time[dseq] : b.value("started_at", r.time)},
                                {"end", r.time}};
      art12["reference_database"] = b.value("gallery", "");
      art12["input_data"] = b.value("input", "");
      json verified = json::object();
      if (b.contains("matches") && b["matches"].is_array())
        for (const auto& m : b["matches"]) {
          if (!m.is_object() || !m.contains("match_id") || !m["match_id"].is_string()) continue;
          const std::string id = m["match_id"].get<std::string>();
          verified[id] = verifiers.count(id) ? json(verifiers[id]) : json::array();
        }
      art12["verified_by"] = verified;
      line["eu_ai_act_art12_3"] = art12;
    }
    out << line.dump() << "\n";
    if (!out) return make_error(ErrorCode::kIoError, "cannot write the export");
    ++written;
  }
  return written;
}

}  // namespace faceguard
