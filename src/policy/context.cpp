// RequestContext <-> JSON, the field schema with its closed vocabularies, and the evaluation document.
#include <algorithm>
#include <cctype>

#include "faceguard/consent.hpp"
#include "policy/context_doc.hpp"
#include "policy/time_util.hpp"

namespace faceguard {
namespace policy {
namespace {

using nlohmann::json;
using Set = std::set<std::string>;

// Closed vocabularies (docs/policy.md, "Context"). Every term a shipped pack tests is here; a value outside
// them is refused on parse so a misspelt role or purpose cannot slip past a rule that names the right one.
const Set kRoles = {"individual",    "private_business", "nonprofit",      "city_agency",
                    "city_contractor", "county_agency", "state_agency",   "federal_agency",
                    "law_enforcement", "school",        "motor_vehicle_bureau"};
const Set kLocations = {"public_space", "public_accommodation", "workplace", "school",
                        "private_premises", "access_control", "device", "online"};
const Set kOperations = {"detect", "attributes", "enroll", "verify", "identify",
                         "track", "cluster", "export", "delete"};
const Set kTiming = {"real_time", "retrospective"};
const Set kSource = {"live", "stored", "still"};
const Set kTargeting = {"targeted", "untargeted"};
const Set kVia = {"direct", "bmv", "fbi", "mirs", "third_party"};
const Set kProvenance = {"consented", "employees", "government_id", "mugshots", "watchlist", "case_evidence",
                         "internet_scrape", "cctv_scrape", "public_images", "self_published"};
const Set kPurposes = {"access_control", "device_unlock", "employee_verification", "timekeeping",
                       "customer_identification", "marketing", "security", "loss_prevention",
                       "fraud_prevention", "law_enforcement", "serious_crime_suspect", "victim_search",
                       "missing_person", "deceased_identification", "endangered_person", "imminent_threat",
                       "terrorist_threat", "medical", "safety", "research", "sale", "photo_organisation",
                       "social_media_detection", "lawful_event_monitoring", "protected_class_targeting",
                       "erasure", "audit", "other"};
const Set kLegalBases = {"explicit_consent", "written_release", "employment_law", "vital_interests",
                         "made_public", "legal_claims", "substantial_public_interest", "health",
                         "public_health", "research", "national_law", "law", "warrant", "subpoena",
                         "court_order", "exigent", "financial_transaction", "none"};
const Set kAuthorisationTypes = {"judicial", "independent_administrative", "warrant", "court_order", "exigent"};
const Set kConsentKinds = {"written_release", "explicit", "informed_notice", "public_image", "self_published_image"};
const Set kAttributes = {"age", "gender", "emotion", "race", "ethnicity", "political_opinion", "trade_union",
                         "religion", "sex_life", "sexual_orientation", "health", "glasses", "pose", "mask"};

const std::vector<FieldSpec>& schema() {
  static const std::vector<FieldSpec> s = {
      {"operator", FieldType::kObject},
      {"operator.id", FieldType::kString},
      {"operator.org", FieldType::kString},
      {"operator.role", FieldType::kEnum, &kRoles},
      {"jurisdiction", FieldType::kObject},
      {"jurisdiction.country", FieldType::kString},
      {"jurisdiction.state", FieldType::kString},
      {"jurisdiction.city", FieldType::kString},
      {"location", FieldType::kObject},
      {"location.type", FieldType::kEnum, &kLocations},
      {"operation", FieldType::kEnum, &kOperations},
      {"timing", FieldType::kEnum, &kTiming},
      {"source", FieldType::kEnum, &kSource},
      {"targeting", FieldType::kEnum, &kTargeting},
      {"via", FieldType::kEnum, &kVia},
      {"gallery", FieldType::kObject},
      {"gallery.id", FieldType::kString},
      {"gallery.provenance", FieldType::kEnum, &kProvenance},
      {"purpose", FieldType::kEnum, &kPurposes},
      {"legal_basis", FieldType::kEnum, &kLegalBases},
      {"attributes", FieldType::kList, &kAttributes},
      {"targets", FieldType::kList},
      {"subject", FieldType::kObject},
      {"subject.id", FieldType::kString},
      {"authorisation", FieldType::kObject},
      {"authorisation.type", FieldType::kEnum, &kAuthorisationTypes},
      {"authorisation.id", FieldType::kString},
      {"authorisation.issuer", FieldType::kString},
      {"authorisation.scope", FieldType::kString},
      {"authorisation.requested_at", FieldType::kTime},
      {"authorisation.granted_at", FieldType::kTime},
      {"authorisation.refused_at", FieldType::kTime},
      {"authorisation.granted", FieldType::kBool, nullptr, true},
      {"authorisation.refused", FieldType::kBool, nullptr, true},
      {"case", FieldType::kObject},
      {"case.id", FieldType::kString},
      {"case.offence", FieldType::kString},
      {"case.probable_cause", FieldType::kBool},
      {"case.serious_crime", FieldType::kBool},
      {"case.max_sentence_years", FieldType::kNumber},
      {"consent", FieldType::kObject},
      {"consent.id", FieldType::kString},
      {"consent.kind", FieldType::kEnum, &kConsentKinds},
      {"consent.purpose", FieldType::kEnum, &kPurposes},
      {"consent.term", FieldType::kDuration},
      {"consent.signed_at", FieldType::kTime},
      {"consent.revoked_at", FieldType::kTime},
      {"consent.active", FieldType::kBool, nullptr, true},
      {"consent.expires_at", FieldType::kTime, nullptr, true},
      {"capture_time", FieldType::kTime},
      {"now", FieldType::kTime, nullptr, true},
      {"extra", FieldType::kObject},
  };
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

struct Reader {
  std::string error;

  bool fail(const std::string& path, const std::string& what) {
    if (error.empty()) error = "context field '" + path + "': " + what;
    return false;
  }
  // Strings; YAML scalars arrive as strings, so typed fields also accept their string spelling.
  bool str(const json& v, const std::string& path, std::string& out) {
    if (v.is_string()) {
      out = v.get<std::string>();
      if (out.size() > 4096) return fail(path, "longer than 4096 characters");
      if (!valid_utf8(out)) return fail(path, "not valid UTF-8");
      if (const FieldSpec* f = field_spec(path); f && f->type == FieldType::kEnum && !f->vocabulary->count(out))
        return fail(path, "'" + out + "' is not one of the known values (docs/policy.md)");
      if (const FieldSpec* f = field_spec(path); f && f->type == FieldType::kDuration && !parse_duration(out))
        return fail(path, "not an ISO 8601 duration: '" + out + "'");
      return true;
    }
    return fail(path, "expected a string");
  }
  bool boolean(const json& v, const std::string& path, std::optional<bool>& out) {
    if (v.is_boolean()) return out = v.get<bool>(), true;
    if (v.is_string() && (v == "true" || v == "false")) return out = (v == "true"), true;
    return fail(path, "expected true or false");
  }
  bool number(const json& v, const std::string& path, std::optional<double>& out) {
    if (v.is_number()) return out = v.get<double>(), true;
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return out = d, true;
    }
    return fail(path, "expected a number");
  }
  bool time(const json& v, const std::string& path, std::optional<Timestamp>& out) {
    if (!v.is_string()) return fail(path, "expected an ISO 8601 time string");
    auto t = parse_timestamp(v.get<std::string>());
    if (!t) return fail(path, t.error().message);
    out = *t;
    return true;
  }
  bool list(const json& v, const std::string& path, std::vector<std::string>& out) {
    if (!v.is_array()) return fail(path, "expected a list");
    if (v.size() > 100000) return fail(path, "more than 100000 items");
    const FieldSpec* f = field_spec(path);
    for (const auto& item : v) {
      if (!item.is_string()) return fail(path, "expected a list of strings");
      std::string s = item.get<std::string>();
      if (!valid_utf8(s)) return fail(path, "not valid UTF-8");
      if (f && f->vocabulary && !f->vocabulary->count(s)) return fail(path, "'" + s + "' is not a known value");
      out.push_back(std::move(s));
    }
    return true;
  }
  // Calls fn(key, value) for each member of an object; unknown keys are errors.
  template <typename Fn>
  bool object(const json& v, const std::string& path, const std::set<std::string>& keys, Fn fn) {
    if (!v.is_object()) return fail(path, "expected an object");
    for (const auto& [k, item] : v.items()) {
      if (!keys.count(k)) return fail(path.empty() ? k : path + "." + k, "unknown field");
      if (item.is_null()) continue;  // null = not stated
      if (!fn(k, item)) return false;
    }
    return true;
  }
};

}  // namespace

const std::vector<FieldSpec>& all_fields() { return schema(); }

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

const FieldSpec* field_spec(std::string_view path) {
  static const FieldSpec kExtra{"extra.*", FieldType::kString};
  if (path.rfind("extra.", 0) == 0 && path.size() > 6) return &kExtra;
  for (const auto& f : schema())
    if (f.path == path) return &f;
  return nullptr;
}

Result<RequestContext> context_from_json(const json& doc) {
  RequestContext c;
  Reader r;
  static const std::set<std::string> kTop = {"operator", "jurisdiction", "location", "operation", "timing",
                                             "source", "targeting", "via", "gallery", "purpose",
                                             "legal_basis", "attributes", "targets", "subject",
                                             "authorisation", "case", "consent", "capture_time", "extra"};
  bool ok = r.object(doc, "", kTop, [&](const std::string& k, const json& v) -> bool {
    if (k == "operator")
      return r.object(v, k, {"id", "org", "role"}, [&](const std::string& f, const json& x) {
        return r.str(x, "operator." + f, f == "id" ? c.op.id : f == "org" ? c.op.org : c.op.role);
      });
    if (k == "jurisdiction")
      return r.object(v, k, {"country", "state", "city"}, [&](const std::string& f, const json& x) {
        std::string s;
        if (!r.str(x, "jurisdiction." + f, s)) return false;
        if (f == "country") {
          c.jurisdiction.country = upper(s);
          if (s.size() != 2 || !std::isalpha(static_cast<unsigned char>(s[0])) ||
              !std::isalpha(static_cast<unsigned char>(s[1])))
            return r.fail("jurisdiction.country", "expected an ISO 3166-1 alpha-2 code such as US or DE");
        } else if (f == "state") {
          c.jurisdiction.state = upper(s);
        } else {
          c.jurisdiction.city = lower(s);
        }
        return true;
      });
    if (k == "location")
      return r.object(v, k, {"type"}, [&](const std::string&, const json& x) { return r.str(x, "location.type", c.location_type); });
    if (k == "operation") {
      std::string s;
      if (v.is_string() && v == "enrol") s = "enroll";  // British spelling accepted
      else if (!r.str(v, k, s)) return false;
      auto op = parse_operation(s);
      if (!op) return r.fail(k, op.error().message);
      c.operation = *op;
      return true;
    }
    if (k == "timing") return r.str(v, k, c.timing);
    if (k == "source") return r.str(v, k, c.source);
    if (k == "targeting") return r.str(v, k, c.targeting);
    if (k == "via") return r.str(v, k, c.via);
    if (k == "gallery")
      return r.object(v, k, {"id", "provenance"}, [&](const std::string& f, const json& x) {
        return r.str(x, "gallery." + f, f == "id" ? c.gallery_id : c.gallery_provenance);
      });
    if (k == "purpose") return r.str(v, k, c.purpose);
    if (k == "legal_basis") return r.str(v, k, c.legal_basis);
    if (k == "attributes") return r.list(v, k, c.attributes);
    if (k == "targets") return r.list(v, k, c.targets);
    if (k == "subject")
      return r.object(v, k, {"id"}, [&](const std::string&, const json& x) { return r.str(x, "subject.id", c.subject_id); });
    if (k == "authorisation") {
      Authorisation a;
      bool good = r.object(v, k, {"type", "id", "issuer", "scope", "requested_at", "granted_at", "refused_at"},
                           [&](const std::string& f, const json& x) {
                             const std::string p = "authorisation." + f;
                             if (f == "type") return r.str(x, p, a.type);
                             if (f == "id") return r.str(x, p, a.id);
                             if (f == "issuer") return r.str(x, p, a.issuer);
                             if (f == "scope") return r.str(x, p, a.scope);
                             if (f == "requested_at") return r.time(x, p, a.requested_at);
                             if (f == "granted_at") return r.time(x, p, a.granted_at);
                             return r.time(x, p, a.refused_at);
                           });
      c.authorisation = a;
      return good;
    }
    if (k == "case") {
      CaseFile cf;
      bool good = r.object(v, k, {"id", "offence", "probable_cause", "serious_crime", "max_sentence_years"},
                           [&](const std::string& f, const json& x) {
                             const std::string p = "case." + f;
                             if (f == "id") return r.str(x, p, cf.id);
                             if (f == "offence") return r.str(x, p, cf.offence);
                             if (f == "probable_cause") return r.boolean(x, p, cf.probable_cause);
                             if (f == "serious_crime") return r.boolean(x, p, cf.serious_crime);
                             return r.number(x, p, cf.max_sentence_years);
                           });
      c.case_file = cf;
      return good;
    }
    if (k == "consent") {
      Consent cs;
      bool good = r.object(v, k, {"id", "kind", "purpose", "term", "signed_at", "revoked_at"},
                           [&](const std::string& f, const json& x) {
                             const std::string p = "consent." + f;
                             if (f == "id") return r.str(x, p, cs.id);
                             if (f == "kind") return r.str(x, p, cs.kind);
                             if (f == "purpose") return r.str(x, p, cs.purpose);
                             if (f == "term") return r.str(x, p, cs.term);
                             if (f == "signed_at") return r.time(x, p, cs.signed_at);
                             return r.time(x, p, cs.revoked_at);
                           });
      c.consent = cs;
      return good;
    }
    if (k == "capture_time") return r.time(v, k, c.capture_time);
    // extra
    if (!v.is_object()) return r.fail(k, "expected an object of strings");
    for (const auto& [ek, ev] : v.items()) {
      if (ev.is_null()) continue;
      std::string s;
      if (ek.empty() || ek.size() > 128 || ek.find('.') != std::string::npos || !valid_utf8(ek))
        return r.fail("extra", "bad key");
      if (!r.str(ev, "extra." + ek, s)) return false;
      c.extra[ek] = s;
    }
    return true;
  });
  if (!ok) return make_error(ErrorCode::kInvalidArgument, r.error);
  return c;
}

json context_json(const RequestContext& c) {
  json d = json::object();
  auto put = [&](json& obj, const char* k, const std::string& v) {
    if (!v.empty()) obj[k] = v;
  };
  auto put_time = [&](json& obj, const char* k, const std::optional<Timestamp>& t) {
    if (t) obj[k] = format_timestamp(*t);
  };
  auto sub = [&](const char* k, json obj) {
    if (!obj.empty()) d[k] = std::move(obj);
  };
  json op = json::object();
  put(op, "id", c.op.id), put(op, "org", c.op.org), put(op, "role", c.op.role);
  sub("operator", op);
  json j = json::object();
  put(j, "country", c.jurisdiction.country), put(j, "state", c.jurisdiction.state), put(j, "city", c.jurisdiction.city);
  sub("jurisdiction", j);
  json loc = json::object();
  put(loc, "type", c.location_type);
  sub("location", loc);
  if (c.operation) d["operation"] = std::string(to_string(*c.operation));
  put(d, "timing", c.timing), put(d, "source", c.source), put(d, "targeting", c.targeting), put(d, "via", c.via);
  json g = json::object();
  put(g, "id", c.gallery_id), put(g, "provenance", c.gallery_provenance);
  sub("gallery", g);
  put(d, "purpose", c.purpose), put(d, "legal_basis", c.legal_basis);
  if (!c.attributes.empty()) d["attributes"] = c.attributes;
  if (!c.targets.empty()) d["targets"] = c.targets;
  json s = json::object();
  put(s, "id", c.subject_id);
  sub("subject", s);
  if (c.authorisation) {
    const auto& a = *c.authorisation;
    json o = json::object();
    put(o, "type", a.type), put(o, "id", a.id), put(o, "issuer", a.issuer), put(o, "scope", a.scope);
    put_time(o, "requested_at", a.requested_at), put_time(o, "granted_at", a.granted_at);
    put_time(o, "refused_at", a.refused_at);
    d["authorisation"] = o;
  }
  if (c.case_file) {
    const auto& cf = *c.case_file;
    json o = json::object();
    put(o, "id", cf.id), put(o, "offence", cf.offence);
    if (cf.probable_cause) o["probable_cause"] = *cf.probable_cause;
    if (cf.serious_crime) o["serious_crime"] = *cf.serious_crime;
    if (cf.max_sentence_years) o["max_sentence_years"] = *cf.max_sentence_years;
    d["case"] = o;
  }
  if (c.consent) {
    const auto& cs = *c.consent;
    json o = json::object();
    put(o, "id", cs.id), put(o, "kind", cs.kind), put(o, "purpose", cs.purpose), put(o, "term", cs.term);
    put_time(o, "signed_at", cs.signed_at), put_time(o, "revoked_at", cs.revoked_at);
    d["consent"] = o;
  }
  put_time(d, "capture_time", c.capture_time);
  if (!c.extra.empty()) d["extra"] = c.extra;
  return d;
}

json evaluation_document(const RequestContext& c, TimePoint now) {
  json d = context_json(c);
  d["now"] = format_utc(now);
  const Timestamp capture = c.capture_time.value_or(Timestamp{now, 0});
  if (!c.capture_time) d["capture_time"] = format_utc(now);
  if (c.consent) {
    d["consent"]["active"] = consent_active(*c.consent, capture.utc);
    if (auto e = consent_expiry(*c.consent)) d["consent"]["expires_at"] = format_utc(*e);
  }
  if (c.authorisation) {
    const auto& a = *c.authorisation;
    const bool refused = a.refused_at && a.refused_at->utc <= now;
    d["authorisation"]["refused"] = refused;
    d["authorisation"]["granted"] = !refused && a.granted_at && a.granted_at->utc <= now;
  }
  return d;
}

json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : n) a.push_back(yaml_to_json(item));
      return a;
    }
    case YAML::NodeType::Scalar: return n.Scalar();
    default: return nullptr;
  }
}

}  // namespace policy

std::string_view to_string(Operation op) noexcept {
  switch (op) {
    case Operation::kDetect: return "detect";
    case Operation::kAttributes: return "attributes";
    case Operation::kEnroll: return "enroll";
    case Operation::kVerify: return "verify";
    case Operation::kIdentify: return "identify";
    case Operation::kTrack: return "track";
    case Operation::kCluster: return "cluster";
    case Operation::kExport: return "export";
    case Operation::kDelete: return "delete";
  }
  return "unknown";
}

Result<Operation> parse_operation(std::string_view name) {
  static const std::pair<std::string_view, Operation> kOps[] = {
      {"detect", Operation::kDetect},   {"attributes", Operation::kAttributes}, {"enroll", Operation::kEnroll},
      {"enrol", Operation::kEnroll},    {"verify", Operation::kVerify},         {"identify", Operation::kIdentify},
      {"track", Operation::kTrack},     {"cluster", Operation::kCluster},       {"export", Operation::kExport},
      {"delete", Operation::kDelete}};
  for (const auto& [n, op] : kOps)
    if (n == name) return op;
  return make_error(ErrorCode::kInvalidArgument, "unknown operation '" + std::string(name) +
                                                     "' (detect, attributes, enroll, verify, identify, track, "
                                                     "cluster, export, delete)");
}

Result<RequestContext> parse_context_json(std::string_view text) {
  try {
    auto doc = nlohmann::json::parse(text);
    return policy::context_from_json(doc);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("context is not valid JSON: ") + e.what());
  }
}

std::string context_to_json(const RequestContext& ctx) { return policy::context_json(ctx).dump(); }

}  // namespace faceguard
