// Safety under faults and load: kill -9 during enrolment, corrupt and truncated files, disk full, readers
// alongside a writer.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gallery_fixture.hpp"

extern char** environ;

namespace faceguard::test {
namespace {

namespace fs = std::filesystem;
constexpr int kTemplatesPerSubject = 3;

// Run by the child process only (see KillDuringEnrolment): enrols subjects forever, appending the number
// committed to a progress file after each enrol() returns.
TEST(GalleryChild, EnrolForever) {
  const char* path = std::getenv("FG_GALLERY_CHILD_PATH");
  if (!path) GTEST_SKIP() << "helper of KillDuringEnrolment";
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_TRUE(g) << g.error().message;
  const int progress = ::open((std::string(path) + ".progress").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  Synth s(99);
  for (int i = 0;; ++i) {
    const auto c = s.centre();
    std::vector<TemplateInput> ts;
    for (int t = 0; t < kTemplatesPerSubject; ++t) ts.push_back(tmpl(s.around(c)));
    ASSERT_TRUE((*g)->enroll({"s-" + std::to_string(i), "S", "{}"}, ts));
    const std::string line = std::to_string(i + 1) + "\n";
    (void)!::write(progress, line.data(), line.size());
  }
}

int last_progress(const fs::path& file) {
  std::ifstream in(file);
  int last = 0, v = 0;
  while (in >> v) last = v;
  return last;
}

TEST(GalleryFaults, KillDuringEnrolmentLosesNothingCommitted) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  ASSERT_TRUE(Gallery::open(path, create_options(test_key())));
  for (int round = 0; round < 2; ++round) {
    setenv("FG_GALLERY_CHILD_PATH", path.c_str(), 1);
    std::string self = fs::read_symlink("/proc/self/exe").string();
    std::string filter = "--gtest_filter=GalleryChild.EnrolForever";
    char* argv[] = {self.data(), filter.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, self.c_str(), &fa, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    unsetenv("FG_GALLERY_CHILD_PATH");
    // Let it commit a good number of subjects, then kill it wherever it is.
    const auto progress = fs::path(path.string() + ".progress");
    for (int i = 0; i < 200 && last_progress(progress) < 20 * (round + 1); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(37 * (round + 1)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    const int committed = last_progress(progress);
    ASSERT_GT(committed, 0) << "the child enrolled nothing";

    auto g = Gallery::open(path, open_options(test_key()));  // quick_check + every template decrypted
    ASSERT_TRUE(g) << g.error().message;
    auto subjects = (*g)->list();
    ASSERT_TRUE(subjects);
    // Nothing committed is lost; at most the one subject in flight is there beyond what was reported.
    EXPECT_GE(static_cast<int>(subjects->size()), committed);
    EXPECT_LE(static_cast<int>(subjects->size()), committed + 1);
    for (const auto& s : *subjects) EXPECT_EQ(s.templates.size(), static_cast<std::size_t>(kTemplatesPerSubject)) << s.subject_id;
    auto st = (*g)->stats();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->unrecoverable_subjects, 0u);
    EXPECT_EQ(st->templates, subjects->size() * kTemplatesPerSubject);
    // Next round continues from a clean state: remove what the child enrolled.
    for (const auto& s : *subjects) ASSERT_TRUE((*g)->remove(s.subject_id));
    fs::remove(progress);
  }
}

void make_gallery(const fs::path& path, int subjects) {
  auto g = Gallery::open(path, create_options(test_key()));
  ASSERT_TRUE(g);
  Synth s(5);
  std::vector<Gallery::Enrolment> batch;
  for (int i = 0; i < subjects; ++i)
    batch.push_back({{"p" + std::to_string(i), "P", "{}"}, std::vector{tmpl(s.around(s.centre()))}});
  auto r = (*g)->enroll_batch(batch);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), static_cast<std::size_t>(subjects));
}

TEST(GalleryFaults, TruncatedFileIsCorruptAndLeftAlone) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  make_gallery(path, 300);
  ASSERT_FALSE(fs::exists(path.string() + "-wal"));  // checkpointed on close
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kCorruptData) << g.error().message;
  EXPECT_EQ(fs::file_size(path), size / 2);  // not "repaired" into an empty gallery
}

TEST(GalleryFaults, GarbageAndEmptyFilesAreCorrupt) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  make_gallery(path, 10);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.write("this is not a database at all!!", 32);
  }
  EXPECT_EQ(Gallery::open(path, open_options(test_key())).error().code, ErrorCode::kCorruptData);
  fs::resize_file(path, 0);
  EXPECT_EQ(Gallery::open(path, open_options(test_key())).error().code, ErrorCode::kCorruptData);
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST(GalleryFaults, DamagedPagesAreCorrupt) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  make_gallery(path, 300);
  const auto size = fs::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kCorruptData) << g.error().message;
}

TEST(GalleryFaults, DiskFullIsAnErrorNotCorruption) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  ASSERT_TRUE(Gallery::open(path, create_options(test_key())));
  int ok = 0;
  ErrorCode last = ErrorCode::kOk;
  {
    auto o = open_options(test_key());
    o.max_bytes = 96 * 1024;  // a quota the gallery file may not outgrow (SQLITE_FULL, as on a full disk)
    auto g = Gallery::open(path, o);
    ASSERT_TRUE(g) << g.error().message;
    Synth s(8);
    for (int i = 0; i < 1000; ++i) {
      const auto c = s.centre();
      auto r = (*g)->enroll({"p" + std::to_string(i), "P", "{}"}, std::vector{tmpl(s.around(c)), tmpl(s.around(c))});
      if (!r) {
        last = r.error().code;
        break;
      }
      ++ok;
    }
    EXPECT_GT(ok, 10);
    EXPECT_EQ(last, ErrorCode::kIoError);
    // Still usable for reading after the failure.
    auto st = (*g)->stats();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->subjects, static_cast<std::size_t>(ok));
  }
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_TRUE(g) << g.error().message;
  auto st = (*g)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subjects, static_cast<std::size_t>(ok));
  EXPECT_EQ(st->templates, static_cast<std::size_t>(ok) * 2);
  EXPECT_EQ(st->orphan_keys_purged, 0u);  // the failed enrolment destroyed its own key
}

TEST(GalleryConcurrency, ReaderFollowsAnotherWriter) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  auto writer = Gallery::open(path, create_options(test_key()));
  ASSERT_TRUE(writer);
  Synth s(9);
  const auto c0 = s.centre();
  ASSERT_TRUE((*writer)->enroll({"first", "F", "{}"}, std::vector{tmpl(s.around(c0))}));
  auto ro = open_options(test_key());
  ro.read_only = true;
  auto reader = Gallery::open(path, ro);
  ASSERT_TRUE(reader) << reader.error().message;
  const auto c1 = s.centre();
  ASSERT_TRUE((*writer)->enroll({"second", "S", "{}"}, std::vector{tmpl(s.around(c1))}));
  auto r = (*reader)->identify(Embedding{kModel, s.around(c1)}, {.top_k = 1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->candidates.at(0).subject_id, "second");
  ASSERT_TRUE((*writer)->remove("second"));
  r = (*reader)->identify(Embedding{kModel, s.around(c1)}, {.top_k = 2});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->candidates.size(), 1u);
  EXPECT_EQ(r->candidates[0].subject_id, "first");
  EXPECT_EQ((*reader)->enroll({"x", "X", "{}"}, std::vector{tmpl(s.around(c1))}).error().code,
            ErrorCode::kPermissionDenied);
}

TEST(GalleryConcurrency, ThreadsSearchWhileOneEnrols) {
  ScratchDir dir;
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g);
  Synth s(10);
  std::vector<std::vector<float>> centres;
  for (int i = 0; i < 50; ++i) {
    centres.push_back(s.centre());
    ASSERT_TRUE((*g)->enroll({"p" + std::to_string(i), "P", "{}"}, std::vector{tmpl(s.around(centres.back()))}));
  }
  std::atomic<int> failures{0}, wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      Synth local(100 + t);
      for (int i = 0; i < 100; ++i) {
        const int who = (i * 7 + t) % 50;
        auto r = (*g)->identify(Embedding{kModel, local.around(centres[who])}, {.top_k = 1});
        if (!r) ++failures;
        else if (r->candidates.at(0).subject_id != "p" + std::to_string(who)) ++wrong;
      }
    });
  }
  for (int i = 50; i < 100; ++i)
    ASSERT_TRUE((*g)->enroll({"p" + std::to_string(i), "P", "{}"}, std::vector{tmpl(s.around(s.centre()))}));
  for (auto& th : readers) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace faceguard::test
