// verify_audit_log: re-derives the hash chain line by line and checks checkpoints and the head file.
#include <fstream>
#include <sstream>

#include "audit/audit_format.hpp"
#include "faceguard/audit.hpp"

namespace faceguard {

using nlohmann::json;

namespace {

struct Verifier {
  AuditVerifyReport report;
  std::optional<std::array<unsigned char, crypto_sign_PUBLICKEYBYTES>> pk;
  std::string pk_id;

  void issue(std::size_t line, std::string what) { report.issues.push_back({line, std::move(what)}); }

  void check_checkpoint(std::size_t line, const json& rec) {
    ++report.checkpoints;
    const json& b = rec["body"];
    const auto seq = rec["seq"].get<std::uint64_t>();
    if (!b.contains("upto") || !b["upto"].is_number_unsigned() || !b.contains("head") || !b["head"].is_string() ||
        !b.contains("sig") || !b["sig"].is_string() || !b.contains("key_id") || !b["key_id"].is_string()) {
      issue(line, "checkpoint is malformed");
      return;
    }
    const auto upto = b["upto"].get<std::uint64_t>();
    const std::string head = b["head"].get<std::string>();
    if (upto + 1 != seq || head != rec["prev"].get<std::string>())
      issue(line, "checkpoint does not attest the record before it (upto " + std::to_string(upto) + ")");
    if (!pk) return;
    if (b["key_id"].get<std::string>() != pk_id) {
      issue(line, "checkpoint signed by another key (" + b["key_id"].get<std::string>() + ", expected " + pk_id + ")");
      return;
    }
    if (!audit::verify_hex(pk->data(), audit::checkpoint_message(upto, head), b["sig"].get<std::string>())) {
      issue(line, "forged checkpoint: the Ed25519 signature does not verify");
      return;
    }
    ++report.checkpoints_verified;
  }

  void check_head(const std::filesystem::path& log, std::size_t lines, const std::string& last_hash) {
    const auto hp = audit::head_path(log);
    std::ifstream in(hp, std::ios::binary);
    if (!in) {
      if (report.records > 0) issue(0, "head file " + hp.string() + " is missing: a cut-off tail cannot be ruled out");
      return;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    json h = json::parse(ss.str(), nullptr, false);
    if (h.is_discarded() || !h.is_object() || !h.contains("seq") || !h["seq"].is_number_unsigned() ||
        !h.contains("hash") || !h["hash"].is_string()) {
      issue(0, "head file " + hp.string() + " is malformed");
      return;
    }
    const auto seq = h["seq"].get<std::uint64_t>();
    const std::string hash = h["hash"].get<std::string>();
    if (pk) {
      if (!h.contains("sig") || !h["sig"].is_string() ||
          !audit::verify_hex(pk->data(), audit::head_message(seq, hash), h["sig"].get<std::string>())) {
        issue(0, "head file signature does not verify (forged or unsigned head)");
        return;
      }
    }
    if (seq > report.last_seq) {
      issue(lines, "truncated: the log ends at seq " + std::to_string(report.last_seq) + " but the head file records seq " +
                       std::to_string(seq) + " (" + std::to_string(seq - report.last_seq) + " record(s) removed from the end)");
    } else if (seq < report.last_seq) {
      issue(lines, "records after seq " + std::to_string(seq) +
                       " are not covered by the head file (appended outside faceguard, or a crash during append)");
    } else if (hash != last_hash) {
      issue(lines, "the last record does not match the head file (edited or replaced)");
    } else {
      report.head_checked = true;
    }
  }
};

}  // namespace

Result<AuditVerifyReport> verify_audit_log(const std::filesystem::path& log, const std::filesystem::path& public_key,
                                           bool require_signatures) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  Verifier v;
  if (!public_key.empty()) {
    auto pk = audit::load_public_key(public_key);
    if (!pk) return pk.error();
    v.pk = *pk;
    v.pk_id = audit::key_id(pk->data());
  }
  std::ifstream in(log, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read audit log " + log.string());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();

  std::uint64_t expected_seq = 1;
  std::string prev_hash = audit::kZeroHash;
  std::size_t line_no = 0, pos = 0;
  while (pos < data.size()) {
    const std::size_t nl = data.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {
      v.issue(line_no, "incomplete last line (torn write or truncated tail)");
      break;
    }
    const std::string line = data.substr(pos, nl - pos);
    pos = nl + 1;
    json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded() || !audit::has_record_shape(rec)) {
      v.issue(line_no, "not an audit record (edited or corrupted)");
      expected_seq += 1;
      prev_hash.clear();  // unknown: the next line's prev cannot be checked against it
      continue;
    }
    ++v.report.records;
    if (rec.dump() != line) v.issue(line_no, "edited: the line is not in the form faceguard wrote");
    const std::string stated = rec["hash"].get<std::string>();
    json unhashed = rec;
    unhashed.erase("hash");
    if (audit::record_hash(unhashed) != stated) v.issue(line_no, "edited: the content does not match its hash");
    const auto seq = rec["seq"].get<std::uint64_t>();
    if (seq != expected_seq) {
      if (seq < expected_seq)
        v.issue(line_no, "reordered or duplicated: seq " + std::to_string(seq) + " where " + std::to_string(expected_seq) + " was expected");
      else
        v.issue(line_no, "record(s) removed before this line: seq " + std::to_string(seq) + " where " +
                             std::to_string(expected_seq) + " was expected");
    }
    if (!prev_hash.empty() && rec["prev"].get<std::string>() != prev_hash)
      v.issue(line_no, "chain broken: prev does not match the hash of the line before (a record was edited, removed, "
                       "inserted or reordered)");
    if (rec["kind"] == "checkpoint") v.check_checkpoint(line_no, rec);
    expected_seq = seq + 1;
    prev_hash = stated;
    v.report.last_seq = seq;
  }
  v.check_head(log, line_no, prev_hash);
  if (require_signatures) {
    if (!v.pk) v.issue(0, "signatures required but no public key was given");
    else if (v.report.records > 0 && v.report.checkpoints_verified == 0 && !v.report.head_checked)
      v.issue(0, "no signed checkpoint or head verifies this log");
  }
  v.report.ok = v.report.issues.empty();
  return v.report;
}

}  // namespace faceguard
