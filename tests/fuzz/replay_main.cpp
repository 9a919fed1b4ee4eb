// A libFuzzer-compatible driver for builds without clang: replays every file of a seed corpus folder,
// then feeds deterministic mutations of them (byte flips, truncations, insertions, splices), so the
// default test suite exercises each parser with thousands of hostile inputs. Under clang, build the same
// fuzz_*.cpp with -fsanitize=fuzzer instead of this file for coverage-guided fuzzing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const std::vector<std::uint8_t>& v) { LLVMFuzzerTestOneInput(v.data(), v.size()); }

std::vector<std::uint8_t> mutate(const std::vector<std::vector<std::uint8_t>>& seeds, std::mt19937& rng) {
  std::vector<std::uint8_t> v = seeds[rng() % seeds.size()];
  const int steps = 1 + static_cast<int>(rng() % 4);
  for (int s = 0; s < steps; ++s) {
    switch (rng() % 6) {
      case 0:  // flip bytes
        for (int i = 0, n = 1 + static_cast<int>(rng() % 8); i < n && !v.empty(); ++i) v[rng() % v.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // truncate
        if (!v.empty()) v.resize(rng() % v.size());
        break;
      case 2: {  // insert random bytes
        std::size_t at = v.empty() ? 0 : rng() % v.size();
        std::vector<std::uint8_t> ins(1 + rng() % 16);
        for (auto& b : ins) b = static_cast<std::uint8_t>(rng());
        v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
        break;
      }
      case 3:  // overwrite with interesting values
        if (!v.empty()) {
          static const std::uint8_t kInteresting[] = {0, 0xff, 0x7f, 0x80, '9', '-', '"', '[', ']', '{', '}', ','};
          v[rng() % v.size()] = kInteresting[rng() % sizeof(kInteresting)];
        }
        break;
      case 4: {  // splice with another seed
        const auto& o = seeds[rng() % seeds.size()];
        if (!o.empty() && !v.empty()) {
          std::size_t a = rng() % v.size(), b = rng() % o.size();
          v.resize(a);
          v.insert(v.end(), o.begin() + static_cast<std::ptrdiff_t>(b), o.end());
        }
        break;
      }
      default:  // duplicate a chunk
        if (v.size() > 2) {
          std::size_t a = rng() % v.size(), n = 1 + rng() % std::min<std::size_t>(64, v.size() - a);
          std::vector<std::uint8_t> chunk(v.begin() + static_cast<std::ptrdiff_t>(a), v.begin() + static_cast<std::ptrdiff_t>(a + n));
          v.insert(v.begin() + static_cast<std::ptrdiff_t>(a), chunk.begin(), chunk.end());
        }
        break;
    }
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR [--mutations N] [--seed S]\n";
    return 2;
  }
  long mutations = 1000;
  unsigned seed = 12345;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--mutations") == 0) mutations = std::atol(argv[i + 1]);
    if (std::strcmp(argv[i], "--seed") == 0) seed = static_cast<unsigned>(std::atol(argv[i + 1]));
  }
  std::vector<std::vector<std::uint8_t>> seeds;
  std::error_code ec;
  if (std::filesystem::is_directory(argv[1], ec)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(argv[1]))
      if (e.is_regular_file()) seeds.push_back(read_all(e.path()));
  }
  if (seeds.empty()) {
    std::cerr << "no seed files under " << argv[1] << "\n";
    return 1;
  }
  run({});
  for (const auto& s : seeds) run(s);
  std::mt19937 rng(seed);
  for (long i = 0; i < mutations; ++i) run(mutate(seeds, rng));
  std::cout << "replayed " << seeds.size() << " seeds and " << mutations << " mutations without a crash\n";
  return 0;
}
