// Running a helper program (npm, tar) without a shell: posix_spawn with an argument vector, stdin from
// /dev/null, stdout and stderr captured (the library never prints), a working folder and a time limit.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::model {

struct ProcessResult {
  int exit_code = -1;     // the program's exit status, or 128+signal when it was killed by a signal
  std::string out;        // captured stdout (truncated at kMaxCapturedBytes)
  std::string err;        // captured stderr (truncated likewise)
};

inline constexpr std::size_t kMaxCapturedBytes = 1u << 20;

// The absolute path of `program`: as given when it contains '/', else searched in $PATH.
std::optional<std::filesystem::path> find_executable(const std::string& program);

// Runs program args... in `cwd`. kNotFound if the program cannot be found or started; kUnavailable if
// it runs past `timeout` (it is then killed). A non-zero exit status is not an error here: callers look
// at exit_code and err.
Result<ProcessResult> run_process(const std::string& program, const std::vector<std::string>& args,
                                  const std::filesystem::path& cwd, std::chrono::seconds timeout);

// The first few meaningful lines of a program's stderr (npm's noise removed), joined by "; ", for an
// error message.
std::string summarise_output(const std::string& text, std::size_t max_lines = 3);

}  // namespace faceguard::model
