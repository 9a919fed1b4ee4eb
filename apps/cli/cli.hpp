// Shared plumbing of the `faceguard` command: sub-command registration, exit codes, error printing.
// The CLI holds no algorithm: every command parses arguments, calls the library and prints.
#pragma once

#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "faceguard/result.hpp"

namespace faceguard::cli {

// Documented in README.md ("Exit codes"). Keep in step.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // internal error
  kExitUsage = 2,          // bad command line (CLI11 also uses 2.. for parse errors; see main.cpp)
  kExitNotFound = 3,       // file or id not found, I/O failure
  kExitBadImage = 4,       // not an image, corrupt/truncated, unsupported, above the pixel limit
  kExitNoFace = 5,         // no face (or several where one was required)
  kExitModel = 6,          // models missing, wrong or failing verification
  kExitPolicyDenied = 7,   // the policy decision point denied the operation
  kExitConflict = 8,       // already exists / concurrent modification
  kExitInvalidData = 9,    // malformed JSON, corrupt gallery or audit log, bad argument value
  kExitDifferent = 10,     // `compare --exit-status`: faces are different
  kExitPermission = 11,    // wrong key, wrong role, audit verification failure
};

int exit_code_for(ErrorCode code);

// Print "faceguard: <what>: <message>" to stderr and return the exit code for the error.
int report(const Error& error, const std::string& what = {});

struct GlobalOptions {
  std::string model_dir;  // --models / FACEGUARD_MODELS
  bool quiet = false;
};

GlobalOptions& globals();

// A sub-command registers itself: `static Registrar r("detect", setup_detect);`.
// setup() adds a subcommand to the app and sets its callback; callbacks return an exit code via
// `set_exit(code)`.
using Setup = std::function<void(CLI::App& app)>;
struct Registrar {
  Registrar(int order, Setup setup);
};
std::vector<std::pair<int, Setup>>& registry();

void set_exit(int code);
int exit_status();

// Adds the policy options and the decision point to every command that touches a face (policy_gate.cpp).
void install_policy_gates(CLI::App& app);

// The model directory chosen by --models, FACEGUARD_MODELS or the default.
std::string model_dir();

}  // namespace faceguard::cli
