// Table-driven policy scenarios: tests/data/policy/*.yaml, written from the statutes (who, where, when, what,
// why -> expected decision and obligations). Each case is its own test (ScenarioTables/Case.Run/<file>:<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "faceguard/policy.hpp"
#include "policy/context_doc.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scenario_dir() { return test::source_dir() / "tests" / "data" / "policy"; }

struct Case {
  std::string file, name;
  std::vector<std::string> extra_dirs;
  json context;
  std::string now;
  YAML::Node expect;
};

void deep_merge(json& base, const json& add) {
  for (const auto& [k, v] : add.items()) {
    if (base.contains(k) && base[k].is_object() && v.is_object()) deep_merge(base[k], v);
    else base[k] = v;
  }
}

std::vector<Case> load_cases() {
  std::vector<Case> out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(scenario_dir()))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    YAML::Node root = YAML::LoadFile(f.string());
    json defaults = root["defaults"] ? policy::yaml_to_json(root["defaults"]) : json::object();
    std::vector<std::string> extra;
    if (root["extra_policy_dirs"])
      for (const auto& d : root["extra_policy_dirs"]) extra.push_back((scenario_dir() / d.as<std::string>()).string());
    for (const auto& c : root["cases"]) {
      Case k;
      k.file = f.filename().string();
      k.name = c["name"].as<std::string>();
      k.extra_dirs = extra;
      k.context = defaults;
      if (c["context"]) deep_merge(k.context, policy::yaml_to_json(c["context"]));
      k.now = c["now"] ? c["now"].as<std::string>() : "";
      k.expect = c["expect"];
      out.push_back(std::move(k));
    }
  }
  return out;
}

// gtest prints a failing parameter with this instead of its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.file << ": " << c.name; }

class ScenarioTables : public ::testing::TestWithParam<Case> {};

const PolicyEngine& engine_for(const std::vector<std::string>& extra) {
  static std::map<std::vector<std::string>, std::unique_ptr<PolicyEngine>> cache;
  auto& slot = cache[extra];
  if (!slot) {
    std::vector<fs::path> dirs{test::source_dir() / "policies"};
    for (const auto& d : extra) dirs.emplace_back(d);
    auto e = PolicyEngine::load(dirs);
    if (!e) ADD_FAILURE() << e.error().message;
    slot = std::make_unique<PolicyEngine>(std::move(*e));
  }
  return *slot;
}

bool fired(const Decision& d, const std::string& id) {
  return std::any_of(d.rules.begin(), d.rules.end(), [&](const FiredRule& r) { return r.id == id; });
}

std::string describe(const Decision& d) { return decision_to_json(d); }

std::optional<std::string> fmt(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return format_utc(*t);
}

TEST_P(ScenarioTables, Run) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.file + ": " + c.name);
  auto ctx = policy::context_from_json(c.context);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  std::optional<TimePoint> now;
  if (!c.now.empty()) {
    auto t = parse_timestamp(c.now);
    ASSERT_TRUE(t.ok()) << t.error().message;
    now = t->utc;
  }
  const Decision d = engine_for(c.extra_dirs).decide(*ctx, now);
  const YAML::Node& e = c.expect;
  ASSERT_TRUE(e && e["effect"]) << "case without expect.effect";
  EXPECT_EQ(std::string(to_string(d.effect)), e["effect"].as<std::string>()) << describe(d);
  if (e["rules"])
    for (const auto& r : e["rules"]) EXPECT_TRUE(fired(d, r.as<std::string>())) << r.as<std::string>() << " did not fire: " << describe(d);
  if (e["not_rules"])
    for (const auto& r : e["not_rules"]) EXPECT_FALSE(fired(d, r.as<std::string>())) << r.as<std::string>() << " fired: " << describe(d);
  if (e["not_denied_by"]) {
    const std::string pack = e["not_denied_by"].as<std::string>();
    for (const auto& r : d.rules) EXPECT_FALSE(r.pack == pack && r.effect == Effect::kDeny) << r.id << " denied: " << describe(d);
  }
  if (e["applied"])
    for (const auto& p : e["applied"])
      EXPECT_NE(std::find(d.packs.begin(), d.packs.end(), p.as<std::string>()), d.packs.end()) << describe(d);
  if (e["missing"]) {
    for (const auto& m : e["missing"]) {
      const std::string field = m.as<std::string>();
      const bool named = std::any_of(d.rules.begin(), d.rules.end(), [&](const FiredRule& r) {
        return std::find(r.missing.begin(), r.missing.end(), field) != r.missing.end();
      });
      EXPECT_TRUE(named) << "no fired rule names missing " << field << ": " << describe(d);
    }
  }
  if (const YAML::Node o = e["obligations"]) {
    const Obligations& ob = d.obligations;
    if (o["human_reviewers"]) EXPECT_EQ(ob.human_reviewers, o["human_reviewers"].as<int>()) << describe(d);
    if (o["top_k"]) EXPECT_EQ(ob.top_k.value_or(-1), o["top_k"].as<int>());
    if (o["min_similarity"]) EXPECT_FLOAT_EQ(ob.min_similarity.value_or(-1.f), o["min_similarity"].as<float>());
    if (o["restrict_to_targets"]) EXPECT_EQ(ob.restrict_to_targets, o["restrict_to_targets"].as<bool>());
    if (o["require_consent"]) EXPECT_EQ(ob.require_consent, o["require_consent"].as<bool>());
    if (o["require_liveness"]) EXPECT_EQ(ob.require_liveness, o["require_liveness"].as<bool>());
    if (o["not_sole_basis"]) {
      const bool has = std::any_of(ob.notices.begin(), ob.notices.end(),
                                   [](const std::string& n) { return n.find("sole basis") != std::string::npos; });
      EXPECT_EQ(has, o["not_sole_basis"].as<bool>()) << describe(d);
    }
    auto check_time = [&](const char* key, const std::optional<TimePoint>& got) {
      if (!o[key]) return;
      const std::string want = o[key].as<std::string>();
      if (want == "none") {
        EXPECT_FALSE(got.has_value()) << key << ": " << describe(d);
      } else {
        auto t = parse_timestamp(want);
        ASSERT_TRUE(t.ok()) << want;
        EXPECT_EQ(fmt(got).value_or("none"), format_utc(t->utc)) << key << ": " << describe(d);
      }
    };
    check_time("retention_deadline", ob.retention_deadline);
    check_time("authorisation_deadline", ob.authorisation_deadline);
    if (o["logs"])
      for (const auto& l : o["logs"])
        EXPECT_NE(std::find(ob.logs.begin(), ob.logs.end(), l.as<std::string>()), ob.logs.end()) << describe(d);
    if (o["none"] && o["none"].as<bool>()) EXPECT_TRUE(ob.empty()) << describe(d);
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.file.substr(0, info.param.file.size() - 5) + "_" + std::to_string(info.index);
  for (auto& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Case, ScenarioTables, ::testing::ValuesIn(load_cases()), case_name);

// The tables must cover every shipped pack and hold the scenarios the issue names.
TEST(ScenarioCoverage, EveryPackHasScenarios) {
  const auto cases = load_cases();
  EXPECT_GE(cases.size(), 60u);
  auto e = PolicyEngine::load({test::source_dir() / "policies"});
  ASSERT_TRUE(e.ok()) << e.error().message;
  for (const auto& p : e->packs()) {
    const bool covered = std::any_of(cases.begin(), cases.end(), [&](const Case& c) {
      return c.file.find(p.id) != std::string::npos;
    });
    EXPECT_TRUE(covered) << "no scenario file named after pack " << p.id;
  }
}

}  // namespace
}  // namespace faceguard
