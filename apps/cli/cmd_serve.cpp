// `faceguard serve` and `faceguard keys`: the HTTP service and its API keys.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <pthread.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/apikeys.hpp"
#include "service.hpp"

namespace faceguard::cli {
namespace {

std::string default_data_dir() {
  if (const char* e = std::getenv("FACEGUARD_DATA"); e && *e) return e;
  return "./faceguard-data";
}

void setup_serve(CLI::App& app) {
  struct Opts {
    server::ServiceConfig cfg;
    std::string data_dir = default_data_dir();
    std::vector<std::string> policy_dirs;
    std::string profile, master_key_file;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("serve", "Run the HTTP service (JSON API; see docs/api.md and /openapi.json)");
  sub->add_option("--host", o->cfg.host, "address to listen on")->capture_default_str();
  sub->add_option("--port", o->cfg.port, "port (0: any free port, printed at start)")->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "galleries, keys.db, audit.jsonl, consent.db ($FACEGUARD_DATA)")
      ->capture_default_str();
  sub->add_option("--profile", o->profile, "deployment profile YAML (required: jurisdiction, location, ...)")
      ->required();
  sub->add_option("--policy-dir", o->policy_dirs, "extra policy pack folder(s)");
  sub->add_option("--master-key-file", o->master_key_file, "gallery master key file (else $FACEGUARD_MASTER_KEY)");
  sub->add_option("--workers", o->cfg.workers, "compute workers (0: one per core)")->capture_default_str();
  sub->add_option("--queue", o->cfg.queue, "queued jobs beyond the workers before 503 (0: 8 x workers)")
      ->capture_default_str();
  sub->add_option("--timeout-ms", o->cfg.request_timeout_ms, "request timeout")->capture_default_str();
  sub->add_option("--max-body", o->cfg.max_body_bytes, "largest request body in bytes (413 above)")
      ->capture_default_str();
  sub->add_option("--max-pixels", o->cfg.max_pixels, "largest image in pixels (422 above)")->capture_default_str();
  sub->add_flag("--no-fsync-audit", [o](std::int64_t) { o->cfg.fsync_audit = false; },
                "do not fsync each audit record (benchmarks only)");
  sub->callback([o] {
    o->cfg.data_dir = o->data_dir;
    o->cfg.profile = o->profile;
    o->cfg.master_key_file = o->master_key_file;
    for (const auto& d : o->policy_dirs) o->cfg.policy_dirs.emplace_back(d);
    o->cfg.model_dir = model_dir();
#ifdef FACEGUARD_SOURCE_DIR
    o->cfg.source_dir = FACEGUARD_SOURCE_DIR;  // the law packs of a build tree that is not installed
#endif
    static std::mutex log_mu;
    o->cfg.log = [](const std::string& line) {
      std::lock_guard lock(log_mu);
      std::cerr << "[faceguard serve] " << line << std::endl;
    };
    // Block the shutdown signals in every thread; this thread waits for them.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    auto svc = server::Service::create(o->cfg);
    if (!svc) return set_exit(report(svc.error(), "serve"));
    if (auto s = (*svc)->start(); !s) return set_exit(report(s.error(), "serve"));
    std::cout << "listening on http://" << o->cfg.host << ":" << (*svc)->port() << std::endl;
    int sig = 0;
    sigwait(&sigs, &sig);
    std::cerr << "[faceguard serve] signal " << sig << ": graceful shutdown" << std::endl;
    (*svc)->stop();
    set_exit(kExitOk);
  });
}

void setup_keys(CLI::App& app) {
  auto db = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>(default_data_dir());
  auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys of the service");
  keys->require_subcommand(1);
  // Accepted before or after the sub-command (`keys --db F create` and `keys create --db F`).
  auto where = [db, data_dir](CLI::App* a) {
    a->add_option("--db", *db, "key store (default: <data dir>/keys.db)");
    a->add_option("--data-dir", *data_dir, "the service's data folder ($FACEGUARD_DATA, else ./faceguard-data)");
  };
  where(keys);
  auto open = [db, data_dir]() {
    std::string path = *db;
    if (path.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(*data_dir, ec);
      path = (std::filesystem::path(*data_dir) / "keys.db").string();
    }
    return ApiKeyStore::open(path);
  };

  struct Create {
    ApiKeyRequest r;
    std::string role = "operator";
    bool json = false;
  };
  auto c = std::make_shared<Create>();
  auto* create = keys->add_subcommand("create", "Issue a key bound to an operator, organisation and role; prints it once");
  create->add_option("--operator", c->r.operator_id, "operator id (policy context operator.id)")->required();
  create->add_option("--org", c->r.organisation, "organisation (policy context operator.org)")->required();
  create->add_option("--role", c->role, "admin | operator | auditor")->capture_default_str();
  create->add_option("--kind", c->r.operator_kind,
                     "policy operator role: individual, private_business, city_agency, law_enforcement, ...")
      ->capture_default_str();
  create->add_option("--label", c->r.label, "free text");
  create->add_option("--rps", c->r.requests_per_second, "sustained requests per second (0: unlimited)")->capture_default_str();
  create->add_option("--burst", c->r.burst, "burst size")->capture_default_str();
  create->add_flag("--json", c->json, "print JSON");
  where(create);
  create->callback([c, open] {
    auto role = parse_api_role(c->role);
    if (!role) return set_exit(report(role.error(), "keys create"));
    c->r.role = *role;
    auto store = open();
    if (!store) return set_exit(report(store.error(), "keys create"));
    auto k = (*store)->create(c->r);
    if (!k) return set_exit(report(k.error(), "keys create"));
    if (c->json)
      std::cout << nlohmann::json({{"id", k->info.id}, {"key", k->secret}, {"role", to_string(k->info.role)}}).dump() << "\n";
    else
      std::cout << k->secret << "\n";
    std::cerr << "key " << k->info.id << " for " << k->info.operator_id << " (" << to_string(k->info.role)
              << "): store it now, it is not shown again\n";
  });

  auto list_json = std::make_shared<bool>(false);
  auto* list = keys->add_subcommand("list", "List keys (never their secrets)");
  list->add_flag("--json", *list_json, "print JSON");
  where(list);
  list->callback([open, list_json] {
    auto store = open();
    if (!store) return set_exit(report(store.error(), "keys list"));
    auto l = (*store)->list();
    if (!l) return set_exit(report(l.error(), "keys list"));
    nlohmann::json out = nlohmann::json::array();
    for (const auto& k : *l) {
      if (*list_json) {
        out.push_back({{"id", k.id}, {"operator", k.operator_id}, {"org", k.organisation},
                       {"role", to_string(k.role)}, {"kind", k.operator_kind}, {"revoked", k.revoked_at.has_value()}});
      } else {
        std::cout << k.id << "  " << to_string(k.role) << "  " << k.operator_id << " @ " << k.organisation << "  "
                  << (k.revoked_at ? "revoked" : "active") << "\n";
      }
    }
    if (*list_json) std::cout << out.dump(2) << "\n";
  });

  auto id = std::make_shared<std::string>();
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by id");
  revoke->add_option("ID", *id, "key id (from `keys list`)")->required();
  where(revoke);
  revoke->callback([open, id] {
    auto store = open();
    if (!store) return set_exit(report(store.error(), "keys revoke"));
    if (auto s = (*store)->revoke(*id); !s) return set_exit(report(s.error(), "keys revoke"));
    std::cout << "revoked " << *id << "\n";
  });
}

const Registrar kServe(90, setup_serve);
const Registrar kKeys(91, setup_keys);

}  // namespace
}  // namespace faceguard::cli
