#include "model/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace faceguard::model {

namespace {

// Closes a descriptor once, on every path out of run_process.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

bool make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  read_end.fd = p[0];
  write_end.fd = p[1];
  return true;
}

void append_capped(std::string& s, const char* data, std::size_t n) {
  if (s.size() >= kMaxCapturedBytes) return;
  s.append(data, std::min(n, kMaxCapturedBytes - s.size()));
}

}  // namespace

std::optional<std::filesystem::path> find_executable(const std::string& program) {
  if (program.empty()) return std::nullopt;
  auto runnable = [](const std::filesystem::path& p) {
    std::error_code ec;
    return std::filesystem::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    if (runnable(program)) return std::filesystem::absolute(program);
    return std::nullopt;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;  // an empty entry would mean the current folder: not searched, on purpose
    auto candidate = std::filesystem::path(dir) / program;
    if (runnable(candidate)) return candidate;
  }
  return std::nullopt;
}

Result<ProcessResult> run_process(const std::string& program, const std::vector<std::string>& args,
                                  const std::filesystem::path& cwd, std::chrono::seconds timeout) {
  auto exe = find_executable(program);
  if (!exe) return make_error(ErrorCode::kNotFound, "program not found: " + program);

  Fd out_r, out_w, err_r, err_w;
  if (!make_pipe(out_r, out_w) || !make_pipe(err_r, err_w))
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<std::string> argv_store;
  argv_store.push_back(exe->string());
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe->c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return make_error(ErrorCode::kNotFound, "cannot run " + exe->string() + ": " + std::strerror(rc));
  out_w.reset();
  err_w.reset();

  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  std::array<char, 65536> buf;
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    std::array<pollfd, 2> fds{{{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}}};
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      Fd& src = i == 0 ? out_r : err_r;
      const ssize_t got = ::read(src.fd, buf.data(), buf.size());
      if (got > 0) {
        append_capped(i == 0 ? result.out : result.err, buf.data(), static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        src.reset();
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return make_error(ErrorCode::kUnavailable, exe->filename().string() + " did not finish within " +
                                                   std::to_string(timeout.count()) + " s and was stopped");
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

std::string summarise_output(const std::string& text, std::size_t max_lines) {
  // npm prefixes every error line with "npm ERR!" (npm <= 8) or "npm error" (npm >= 9), then prints the
  // cause first ("code ECONNREFUSED", "FetchError: request to ... failed", "404 Not Found - GET ...")
  // followed by a stack trace, an object dump and a pointer to its log. Keep the first distinct lines
  // that are not that noise.
  static const char* const kPrefixes[] = {"npm ERR! ", "npm ERR!", "npm error ", "npm error", "npm warn "};
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line) && lines.size() < max_lines) {
    for (const char* p : kPrefixes)
      if (line.rfind(p, 0) == 0) {
        line.erase(0, std::strlen(p));
        break;
      }
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) continue;  // stack frames, dumps
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line == "{" || line == "}" || line.size() <= 4) continue;
    if (line.rfind("syscall ", 0) == 0 || line.rfind("errno ", 0) == 0) continue;
    if (line.find("complete log of this run") != std::string::npos) continue;
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }
  if (lines.empty()) return "(no output)";
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "; ") + l;
  return out;
}

}  // namespace faceguard::model
