// AuditLog: append-only JSON lines with a hash chain, signed checkpoints, a signed head file, fsync and flock.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "audit/audit_format.hpp"
#include "faceguard/audit.hpp"

namespace faceguard {

using nlohmann::json;

namespace {

struct LogState {
  std::filesystem::path path;
  AuditOptions options;
  std::optional<audit::SigningKey> key;
  int fd = -1;
  int head_fd = -1;  // "<log>.head", rewritten in place (write_head)
  std::mutex mu;  // threads of this process; flock() orders processes
  // Cached tail, valid while the file size equals `size`.
  off_t size = -1;
  std::uint64_t last_seq = 0;
  std::string last_hash = audit::kZeroHash;
  std::uint64_t durable_seq = 0;  // records up to here are fdatasync'ed (by this process's appends)
  bool head_sync_due = true;  // fsync the next head file (the first, and the one after each checkpoint)
  // Group commit (AuditOptions::group_commit): the flusher thread, woken by every write (work), announces
  // each finished fdatasync (done). All under mu.
  std::thread flusher;
  std::condition_variable work, done;
  bool stopping = false;
  std::optional<Error> sync_error;  // sticky: after a failed fdatasync the kernel may have dropped the pages

  LogState() = default;
  LogState(const LogState&) = delete;
  LogState& operator=(const LogState&) = delete;
  ~LogState() {
    if (flusher.joinable()) {
      {
        std::lock_guard<std::mutex> guard(mu);
        stopping = true;
      }
      work.notify_one();
      flusher.join();  // it syncs what is still pending first
    }
    if (fd >= 0) ::close(fd);
    if (head_fd >= 0) ::close(head_fd);
    if (key) sodium_memzero(key->secret.data(), key->secret.size());
  }
};

// The group-commit thread: fdatasync whenever something written is not yet durable, outside the mutex, so
// appends go on meanwhile; every record written before the call (by any thread or process) is durable after it.
void flush_loop(LogState& im) {
  std::unique_lock<std::mutex> lock(im.mu);
  while (true) {
    im.work.wait(lock, [&] { return im.stopping || (!im.sync_error && im.last_seq > im.durable_seq); });
    if (im.sync_error || im.last_seq <= im.durable_seq) return;  // stopping with nothing pending
    const std::uint64_t target = im.last_seq;
    lock.unlock();
    const int rc = ::fdatasync(im.fd);
    const int err = errno;
    lock.lock();
    if (rc != 0) im.sync_error = Error{ErrorCode::kIoError, std::string("audit fsync failed: ") + std::strerror(err)};
    else im.durable_seq = std::max(im.durable_seq, target);
    im.done.notify_all();
  }
}

class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    while ((ok_ = ::flock(fd_, LOCK_EX) == 0) == false && errno == EINTR) {
    }
  }
  ~FileLock() {
    if (ok_) ::flock(fd_, LOCK_UN);
  }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

Status write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIoError, std::string("audit write failed: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

// Reads the last line of the file (size > 0) to learn the chain head.
Status read_tail(LogState& im, off_t size) {
  if (size == 0) {
    im.last_seq = 0;
    im.last_hash = audit::kZeroHash;
    im.size = 0;
    return ok_status();
  }
  std::size_t window = 4096;
  while (true) {
    const off_t start = size > static_cast<off_t>(window) ? size - static_cast<off_t>(window) : 0;
    std::string buf(static_cast<std::size_t>(size - start), '\0');
    const ssize_t n = ::pread(im.fd, buf.data(), buf.size(), start);
    if (n != static_cast<ssize_t>(buf.size())) return make_error(ErrorCode::kIoError, "cannot read the audit log tail");
    if (buf.back() != '\n')
      return make_error(ErrorCode::kCorruptData, im.path.string() +
                                                     ": the last record is incomplete (torn write or truncation); "
                                                     "run `faceguard audit verify`");
    const std::size_t prev_nl = buf.rfind('\n', buf.size() - 2);
    if (prev_nl == std::string::npos && start > 0) {
      window *= 4;  // a long record: widen the window
      if (window > (64u << 20)) return make_error(ErrorCode::kCorruptData, "audit record longer than 64 MiB");
      continue;
    }
    const std::string line = buf.substr(prev_nl == std::string::npos ? 0 : prev_nl + 1,
                                        buf.size() - 1 - (prev_nl == std::string::npos ? 0 : prev_nl + 1));
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !audit::has_record_shape(j))
      return make_error(ErrorCode::kCorruptData, im.path.string() + ": the last record is malformed; run `faceguard audit verify`");
    im.last_seq = j["seq"].get<std::uint64_t>();
    im.last_hash = j["hash"].get<std::string>();
    im.size = size;
    return ok_status();
  }
}

// The head file holds one fixed-size record, kHeadBytes at offset 0: the JSON padded with spaces and a newline
// (JSON readers skip the spaces). It is rewritten in place with one pwrite after every append, under the log's
// locks: a process kill cannot tear a one-page write, and the record sits in the file's first 512-byte sector,
// which a device writes whole, so after a power loss it is the old head or the new one. (It used to be
// replaced by write + rename per append, which cost a file creation and an inode eviction every time.) Only
// the first head of a file is created by write + rename, so that an empty head file never exists.
// The head is made durable (fsync) only with the first append of a process and at each signed checkpoint: the
// log itself is fdatasync'ed for every record (at once, or by group commit), so a process kill loses nothing
// and the head is current; after a power loss the head may lag the durable log by less than checkpoint_every
// records, which `audit verify` reports as records "not covered by the head file (... a crash during
// append)" - what they are. One fsync per record instead of two (docs/policy.md).
constexpr std::size_t kHeadBytes = 512;

Status write_head(LogState& im) {
  json h{{"seq", im.last_seq}, {"hash", im.last_hash}};
  if (im.key) {
    h["key_id"] = im.key->key_id;
    h["sig"] = audit::sign_hex(*im.key, audit::head_message(im.last_seq, im.last_hash));
  }
  std::string text = h.dump();
  if (text.size() >= kHeadBytes) return make_error(ErrorCode::kInternal, "audit head record too long");
  text.resize(kHeadBytes - 1, ' ');
  text.push_back('\n');
  const std::filesystem::path head = audit::head_path(im.path);
  const bool sync = im.options.sync && im.head_sync_due;
  if (im.head_fd < 0) {
    im.head_fd = ::open(head.c_str(), O_WRONLY | O_CLOEXEC);
    if (im.head_fd < 0 && errno != ENOENT) return make_error(ErrorCode::kIoError, "cannot open " + head.string());
  }
  if (im.head_fd < 0) {
    const std::string tmp = head.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return make_error(ErrorCode::kIoError, "cannot write " + tmp);
    Status s = write_all(fd, text);
    if (s && sync && ::fsync(fd) != 0) s = make_error(ErrorCode::kIoError, "fsync failed on " + tmp);
    ::close(fd);
    FG_TRY_STATUS(s);
    if (::rename(tmp.c_str(), head.c_str()) != 0) return make_error(ErrorCode::kIoError, "cannot create " + head.string());
    if (sync) im.head_sync_due = false;
    im.head_fd = ::open(head.c_str(), O_WRONLY | O_CLOEXEC);
    if (im.head_fd < 0) return make_error(ErrorCode::kIoError, "cannot open " + head.string());
    return ok_status();
  }
  ssize_t n;
  while ((n = ::pwrite(im.head_fd, text.data(), text.size(), 0)) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(text.size()))
    return make_error(ErrorCode::kIoError, "cannot write " + head.string() + ": " + std::strerror(errno));
  if (sync) {
    if (::fsync(im.head_fd) != 0) return make_error(ErrorCode::kIoError, "fsync failed on " + head.string());
    im.head_sync_due = false;
  }
  return ok_status();
}

// Appends one record under the lock (the caller holds both locks and has a fresh tail). !sync: written, not
// fdatasync'ed (a deferred record, made durable by the next synced append or sync_through).
Result<std::uint64_t> append_locked(LogState& im, const std::string& kind, json body, bool sync = true) {
  json rec{{"seq", im.last_seq + 1}, {"time", audit::now_utc_millis()}, {"kind", kind}, {"prev", im.last_hash},
           {"body", std::move(body)}};
  const std::string hash = audit::record_hash(rec);
  rec["hash"] = hash;
  const std::string line = rec.dump() + "\n";
  FG_TRY_STATUS(write_all(im.fd, line));
  // With group commit the flusher syncs; a kNow caller waits for it after the locks are released.
  const bool synced = sync && im.options.sync && !im.flusher.joinable();
  if (synced && ::fdatasync(im.fd) != 0)
    return make_error(ErrorCode::kIoError, std::string("audit fsync failed: ") + std::strerror(errno));
  im.last_seq += 1;
  im.last_hash = hash;
  im.size += static_cast<off_t>(line.size());
  // fdatasync covers every byte written to the file before it, by any process: the deferred records too.
  if (synced) im.durable_seq = im.last_seq;
  if (im.flusher.joinable()) im.work.notify_one();
  return im.last_seq;
}

Result<std::uint64_t> append_checkpoint_locked(LogState& im) {
  json body{{"upto", im.last_seq},
            {"head", im.last_hash},
            {"key_id", im.key->key_id},
            {"sig", audit::sign_hex(*im.key, audit::checkpoint_message(im.last_seq, im.last_hash))}};
  im.head_sync_due = true;
  return append_locked(im, "checkpoint", std::move(body));
}

// Takes the locks, refreshes the tail, runs fn, writes the head file.
template <typename Fn>
Result<std::uint64_t> with_lock(LogState& im, Fn fn) {
  std::lock_guard<std::mutex> guard(im.mu);
  FileLock lock(im.fd);
  if (!lock.ok()) return make_error(ErrorCode::kIoError, "cannot lock " + im.path.string());
  struct stat st {};
  if (::fstat(im.fd, &st) != 0) return make_error(ErrorCode::kIoError, "cannot stat " + im.path.string());
  if (st.st_size != im.size) FG_TRY_STATUS(read_tail(im, st.st_size));
  FG_ASSIGN_OR_RETURN(std::uint64_t seq, fn());
  FG_TRY_STATUS(write_head(im));
  return seq;
}

}  // namespace

struct AuditLog::Impl : LogState {};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::AuditLog(AuditLog&&) noexcept = default;
AuditLog& AuditLog::operator=(AuditLog&&) noexcept = default;
AuditLog::~AuditLog() = default;

const std::filesystem::path& AuditLog::path() const { return impl_->path; }

Result<AuditLog> AuditLog::open(const std::filesystem::path& path, const AuditOptions& options) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  if (options.checkpoint_every < 1) return make_error(ErrorCode::kInvalidArgument, "checkpoint_every must be >= 1");
  auto im = std::make_unique<Impl>();
  im->path = path;
  im->options = options;
  if (!options.signing_key.empty()) {
    auto k = audit::load_secret_key(options.signing_key);
    if (!k) return k.error();
    im->key = *k;
  }
  im->fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (im->fd < 0)
    return make_error(errno == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kIoError,
                      "cannot open audit log " + path.string() + ": " + std::strerror(errno));
  {
    std::lock_guard<std::mutex> guard(im->mu);
    FileLock lock(im->fd);
    struct stat st {};
    if (!lock.ok() || ::fstat(im->fd, &st) != 0) return make_error(ErrorCode::kIoError, "cannot lock " + path.string());
    FG_TRY_STATUS(read_tail(*im, st.st_size));
  }
  if (options.sync && options.group_commit) {
    LogState* state = im.get();
    im->flusher = std::thread([state] { flush_loop(*state); });
  }
  return AuditLog(std::move(im));
}

Result<std::uint64_t> AuditLog::append(const std::string& kind, const std::string& body_json) {
  return append(kind, body_json, Sync::kNow);
}

Result<std::uint64_t> AuditLog::append(const std::string& kind, const std::string& body_json, Sync when) {
  if (kind.empty() || kind == "checkpoint")
    return make_error(ErrorCode::kInvalidArgument, "audit record kind must be non-empty and not 'checkpoint'");
  json body = json::parse(body_json, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return make_error(ErrorCode::kInvalidArgument, "audit record body must be a JSON object");
  Impl& im = *impl_;
  try {
    std::uint64_t last = 0;  // this call's last record: a checkpoint may follow the one asked for
    auto appended = with_lock(im, [&]() -> Result<std::uint64_t> {
      FG_ASSIGN_OR_RETURN(std::uint64_t seq, append_locked(im, kind, std::move(body), when == Sync::kNow));
      last = seq;
      // Blocks of N records and one checkpoint: the checkpoint takes every (N+1)-th seq. Decided by seq
      // alone, so processes sharing the log agree on where checkpoints go.
      const auto n = static_cast<std::uint64_t>(im.options.checkpoint_every);
      if (im.key && seq % (n + 1) == n) {
        FG_ASSIGN_OR_RETURN(last, append_checkpoint_locked(im));
      }
      return seq;
    });
    if (appended && when == Sync::kNow && im.flusher.joinable()) FG_TRY_STATUS(sync_through(last));
    return appended;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("audit append: ") + e.what());
  }
}

Status AuditLog::sync_through(std::uint64_t seq) {
  Impl& im = *impl_;
  if (!im.options.sync) return ok_status();
  if (im.flusher.joinable()) {
    std::unique_lock<std::mutex> lock(im.mu);
    seq = std::min(seq, im.last_seq);  // nothing above what was written can be waited for
    im.done.wait(lock, [&] { return im.durable_seq >= seq || im.sync_error.has_value(); });
    if (im.durable_seq >= seq) return ok_status();
    return *im.sync_error;
  }
  std::lock_guard<std::mutex> guard(im.mu);
  if (im.durable_seq >= seq) return ok_status();
  // No flock: fdatasync only flushes, and a record of this process below `seq` is already in the file.
  if (::fdatasync(im.fd) != 0)
    return make_error(ErrorCode::kIoError, std::string("audit fsync failed: ") + std::strerror(errno));
  im.durable_seq = std::max(im.durable_seq, seq);
  return ok_status();
}

Result<std::uint64_t> AuditLog::checkpoint() {
  Impl& im = *impl_;
  if (!im.key) return make_error(ErrorCode::kInvalidArgument, "no signing key: checkpoints need `faceguard audit keygen`");
  try {
    auto seq = with_lock(im, [&] { return append_checkpoint_locked(im); });
    if (seq && im.flusher.joinable()) FG_TRY_STATUS(sync_through(*seq));
    return seq;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("audit checkpoint: ") + e.what());
  }
}

Result<std::vector<AuditRecord>> AuditLog::read_all() const {
  std::ifstream in(impl_->path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIoError, "cannot read " + impl_->path.string());
  std::vector<AuditRecord> out;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !audit::has_record_shape(j))
      return make_error(ErrorCode::kCorruptData, impl_->path.string() + ": line " + std::to_string(n) + " is not an audit record");
    out.push_back({j["seq"].get<std::uint64_t>(), j["time"].get<std::string>(), j["kind"].get<std::string>(),
                   j["prev"].get<std::string>(), j["hash"].get<std::string>(), j["body"].dump(), n});
  }
  return out;
}

}  // namespace faceguard
