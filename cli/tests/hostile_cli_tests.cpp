// Hostile arguments and inputs to the command line: outputs that are devices, FIFOs, links or the
// input itself; recordings that are not what they claim or that contradict themselves; numbers
// that would wrap; text that would drive the terminal. Each case asserts the exit code, the shape
// of the message, and that nothing was left behind or destroyed.
#include "cli_test_support.hpp"
#include "terminal.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("memtrack-hostile-" + std::to_string(random()) + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }
  [[nodiscard]] static std::string read(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  /// @return the names in the test's folder (a temporary left behind would show here)
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> all;
    for (const auto& entry : fs::directory_iterator(dir_))
      all.push_back(entry.path().filename().string());
    std::sort(all.begin(), all.end());
    return all;
  }

  fs::path dir_;
};

// gpu:0 limit 1000, cpu limit 500.
constexpr const char* node =
    "memtrack-trace 1\nsource unit test\nmemory_fraction 1\ncpu_memory_limit 500\n"
    "gpu 0 total=1000\nevents\n";

/// A small Kineto trace: 100 and 200 bytes allocated on GPU 0, at traceEvents 1 and 3.
std::string kineto(std::uint64_t second_bytes = 200) {
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "aten::empty"}, {"ph", "X"}, {"ts", 1}});
  events.push_back({{"name", "[memory]"},
                    {"ph", "i"},
                    {"ts", 2},
                    {"args",
                     {{"Device Type", 1},
                      {"Device Id", 0},
                      {"Addr", 4096},
                      {"Bytes", 100},
                      {"Total Allocated", 100},
                      {"Total Reserved", 2097152}}}});
  events.push_back({{"name", "aten::add"}, {"ph", "X"}, {"ts", 3}});
  events.push_back({{"name", "[memory]"},
                    {"ph", "i"},
                    {"ts", 4},
                    {"args",
                     {{"Device Type", 1},
                      {"Device Id", 0},
                      {"Addr", 8192},
                      {"Bytes", second_bytes},
                      {"Total Allocated", 100 + second_bytes},
                      {"Total Reserved", 2097152}}}});
  return nlohmann::json{{"traceEvents", events}}.dump();
}

// ---- outputs ----

/// Reads a FIFO while a command writes it: the read end is open before the command starts (a
/// writer that finds no reader is refused), and reading goes on until the command has returned
/// and the FIFO is drained.
class FifoReader {
 public:
  explicit FifoReader(const std::string& fifo)
      : fd_(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK)), thread_([this] { drain(); }) {}
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;
  ~FifoReader() { finish(); }
  /// @return everything read, once the writer is done
  std::string finish() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return received_;
  }

 private:
  void drain() {
    char buffer[65536];
    for (;;) {
      const ssize_t got = ::read(fd_, buffer, sizeof buffer);
      if (got > 0) {
        received_.append(buffer, static_cast<std::size_t>(got));
        continue;
      }
      if (done_) return;  // the command returned and nothing is left
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  int fd_;
  std::atomic<bool> done_{false};
  std::string received_;
  std::thread thread_;
};

TEST_F(HostileCli, AFifoOutputIsWrittenInPlaceNeverRenamedOver) {
  const std::string in = write("k.json", kineto());
  const std::string fifo = path("out.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without a reader, a FIFO is refused at once (never waited on forever).
  const CliRun alone = memtrack({"import", in, "-o", fifo});
  EXPECT_EQ(alone.code, 2);
  EXPECT_NE(alone.err.find("a FIFO with no reader"), std::string::npos) << alone.err;
  FifoReader reader(fifo);
  const CliRun run = memtrack({"import", in, "-o", fifo});
  const std::string received = reader.finish();
  EXPECT_EQ(run.code, 0) << run.err;
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced by a regular file";
  EXPECT_TRUE(received.starts_with("memtrack-trace 1\n")) << received.substr(0, 80);
  EXPECT_EQ(names(), (std::vector<std::string>{"k.json", "out.fifo"}));  // no temporary
}

TEST_F(HostileCli, ALinkToADeviceIsWrittenThroughNotReplaced) {
  // /dev/stdout is a link to /proc/self/fd/1: the link must stay a link.
  const std::string in = write("k.json", kineto());
  const std::string fifo = path("target.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string link = path("stdout-like");
  fs::create_symlink(fifo, link);
  FifoReader reader(fifo);
  const CliRun run = memtrack({"report", in, "-o", link, "--format", "svg"});
  const std::string received = reader.finish();
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_NE(received.find("<svg"), std::string::npos);
}

TEST_F(HostileCli, ALinkToARegularFileReplacesTheFileAndKeepsTheLink) {
  const std::string in = write("k.json", kineto());
  const std::string target = write("real.trace", "old");
  const std::string link = path("link.trace");
  fs::create_symlink(target, link);
  const CliRun run = memtrack({"import", in, "-o", link});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(read(target).starts_with("memtrack-trace 1\n"));
}

TEST_F(HostileCli, AnOutputThatIsTheInputIsRefusedBeforeAnythingIsRead) {
  const std::string text = kineto();
  const std::string in = write("k.json", text);
  fs::create_hard_link(in, path("hard.json"));
  fs::create_symlink(in, path("soft.json"));
  const std::vector<std::vector<std::string>> commands = {
      {"import", in, "-o", in},
      {"import", in, "-o", path("hard.json")},
      {"import", in, "-o", path("soft.json")},
      {"report", in, "-o", path("soft.json")},
      {"replay", in, "--states", path("hard.json")},
  };
  for (const auto& args : commands) {
    const CliRun run = memtrack(args);
    EXPECT_EQ(run.code, 2) << args[0] << " " << args[3];
    EXPECT_NE(run.err.find("is the same file as the input"), std::string::npos) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_EQ(read(in), text) << "the input was changed";
  }
  EXPECT_EQ(names(), (std::vector<std::string>{"hard.json", "k.json", "soft.json"}));
}

TEST_F(HostileCli, CompressedOutputExtensionsAreHonouredOrRefused) {
  const std::string in = write("k.json", kineto());
  const CliRun gz = memtrack({"import", in, "-o", path("k.trace.gz")});
  ASSERT_EQ(gz.code, 0) << gz.err;
  const std::string bytes = read(path("k.trace.gz"));
  ASSERT_GE(bytes.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1F);  // gzip's magic, not plain text
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8B);
  const CliRun back = memtrack({"replay", path("k.trace.gz")});
  EXPECT_EQ(back.code, 0) << back.out << back.err;

  const CliRun zst = memtrack({"import", in, "-o", path("k.trace.zst")});
  ASSERT_EQ(zst.code, 0) << zst.err;
  EXPECT_EQ(read(path("k.trace.zst")).substr(0, 4), std::string("\x28\xB5\x2F\xFD", 4));

  const CliRun upper = memtrack({"import", in, "-o", path("K.TRACE.GZ")});
  ASSERT_EQ(upper.code, 0) << upper.err;
  EXPECT_EQ(static_cast<unsigned char>(read(path("K.TRACE.GZ"))[0]), 0x1F);  // case-blind
  for (const char* refused : {"k.trace.xz", "k.trace.bz2", "k.trace.lz4", "k.trace.Z"}) {
    const CliRun run = memtrack({"import", in, "-o", path(refused)});
    EXPECT_EQ(run.code, 2) << refused;
    EXPECT_NE(run.err.find("cannot write"), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(path(refused)));
  }
}

/// Runs memtrack with the process's standard output sent to `file`.
CliRun with_stdout_to(const std::string& file, const std::vector<std::string>& args) {
  std::fflush(stdout);
  const int saved = ::dup(STDOUT_FILENO);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(fd, STDOUT_FILENO);
  ::close(fd);
  CliRun run = memtrack(args);
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  return run;
}

TEST_F(HostileCli, DashIsStandardOutputAndTheSummaryMovesToStandardError) {
  const std::string in = write("k.json", kineto());
  const CliRun run = with_stdout_to(path("captured"), {"import", in, "-o", "-"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
  EXPECT_NE(run.err.find("events"), std::string::npos) << run.err;
  EXPECT_TRUE(read(path("captured")).starts_with("memtrack-trace 1\n"));
}

// ---- inputs that are not what they claim ----

TEST_F(HostileCli, JsonWithoutMemoryEventsIsRefusedNotAnEmptyFit) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty.json", "{}"},
      {"package.json", R"({"name": "left-pad", "version": "1.3.0", "dependencies": {}})"},
      {"no-memory.json",
       R"({"traceEvents": [{"name": "aten::mm", "ph": "X", "ts": 1, "dur": 2}]})"},
  };
  for (const auto& [name, text] : cases) {
    const std::string file = write(name, text);
    const CliRun fit = memtrack({"fit", file, "--profile", "rtx5090"});
    EXPECT_EQ(fit.code, 2) << name << "\n" << fit.out;
    EXPECT_EQ(fit.out.find("FITS"), std::string::npos) << fit.out;
    EXPECT_NE(fit.err.find(name), std::string::npos) << fit.err;
    EXPECT_EQ(std::count(fit.err.begin(), fit.err.end(), '\n'), 1) << fit.err;
  }
  const CliRun run = memtrack({"fit", path("no-memory.json"), "--profile", "rtx5090"});
  EXPECT_NE(run.err.find("profile_memory=True"), std::string::npos) << run.err;
}

// ---- recordings that contradict themselves ----

TEST_F(HostileCli, ADoubleFreeIsReportedAndFailsFitUnlessAllowed) {
  const std::string trace = write("double.trace", std::string(node) +
                                                      "alloc gpu:0 100 addr=0x10\n"
                                                      "free gpu:0 100 addr=0x10\n"
                                                      "alloc gpu:0 300 addr=0x20\n"
                                                      "free gpu:0 100 addr=0x10\n"
                                                      "end 4\n");
  const CliRun replay = memtrack({"replay", trace});
  EXPECT_EQ(replay.code, 1) << replay.out;
  EXPECT_NE(replay.out.find("inconsistent recording: 1 "), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("double free"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("event 4"), std::string::npos) << replay.out;
  EXPECT_EQ(replay.out.find("agree on every event"), std::string::npos) << replay.out;

  const CliRun fit = memtrack({"fit", trace, "--profile", "rtx5090"});
  EXPECT_EQ(fit.code, 1) << fit.out;
  EXPECT_NE(fit.out.find("INCONSISTENT"), std::string::npos) << fit.out;

  const CliRun allowed = memtrack({"fit", trace, "--profile", "rtx5090", "--allow-inconsistent"});
  EXPECT_EQ(allowed.code, 0) << allowed.out;
  // The double free is not applied: the 300 bytes stay allocated, so 300 remain at the end.
  const CliRun json =
      memtrack({"fit", trace, "--profile", "rtx5090", "--allow-inconsistent", "--json"});
  const auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["inconsistencies"], 1);
  EXPECT_EQ(parsed["first_inconsistency"]["event"], 4);
  EXPECT_EQ(parsed["devices"][0]["peak_bytes"], 300);
}

TEST_F(HostileCli, AFreeOfMemoryNeverAllocatedIsInconsistentUnlessABaselineCoversIt) {
  const std::string bare = write("bare.trace", std::string(node) +
                                                   "alloc gpu:0 100 addr=0x10\n"
                                                   "free gpu:0 50 addr=0x99\n"
                                                   "end 2\n");
  const CliRun replay = memtrack({"replay", bare});
  EXPECT_EQ(replay.code, 1) << replay.out;
  EXPECT_NE(replay.out.find("never allocated"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("no baseline"), std::string::npos) << replay.out;

  // With memory from before the recording, an unseen address is freed by size: consistent.
  const std::string covered = write("covered.trace", std::string(node) +
                                                         "baseline gpu:0 200\n"
                                                         "free gpu:0 50 addr=0x99\n"
                                                         "end 2\n");
  const CliRun ok = memtrack({"replay", covered});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(ok.out.find("inconsistent recording"), std::string::npos) << ok.out;
}

// ---- every operation lands somewhere ----

TEST_F(HostileCli, ANodeWithFewerGpusThanTheTraceUsesIsRefused) {
  const std::string trace = write("two.trace",
                                  "memtrack-trace 1\nsource unit test\nmemory_fraction 1\n"
                                  "gpu 0 total=1000\ngpu 1 total=1000\nevents\n"
                                  "alloc gpu:0 100\nalloc gpu:1 900\nend 2\n");
  const CliRun run = memtrack({"fit", trace, "--profile", "h200", "--gpus", "1"});
  EXPECT_EQ(run.code, 2) << run.out;
  EXPECT_NE(run.err.find("gpu:1"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("FITS"), std::string::npos);
}

TEST_F(HostileCli, TheGpusATraceUsesMapOntoTheFirstOfTheNode) {
  // Rank 1 of 2: declares two GPUs, allocates on gpu:1 only; fits a one-GPU node whole.
  const std::string trace = write("rank1.trace",
                                  "memtrack-trace 1\nsource unit test\nmemory_fraction 1\n"
                                  "gpu 0 total=1000\ngpu 1 total=1000\nevents\n"
                                  "alloc gpu:1 100 addr=0x1\nalloc gpu:1 900 addr=0x2\n"
                                  "free gpu:1 addr=0x1\nend 3\n");
  const CliRun run = memtrack({"fit", trace, "--profile", "h200", "--json"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  const auto parsed = nlohmann::json::parse(run.out);
  EXPECT_EQ(parsed["operations"], 3);
  ASSERT_EQ(parsed["devices"].size(), 2U);  // gpu:0 and the CPU
  EXPECT_EQ(parsed["devices"][0]["device"], "gpu:0");
  EXPECT_EQ(parsed["devices"][0]["peak_bytes"], 1000);

  const CliRun mapped =
      memtrack({"fit", trace, "--profile", "h200", "--gpus", "2", "--map", "gpu:1=gpu:1"});
  EXPECT_EQ(mapped.code, 0) << mapped.out << mapped.err;
  const CliRun bad = memtrack({"fit", trace, "--profile", "h200", "--map", "gpu:1=gpu:7"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("no gpu:7"), std::string::npos) << bad.err;
}

TEST_F(HostileCli, ARecordingWithoutDevicesReplaysWithoutABudget) {
  const std::string trace = write("bare.trace",
                                  "memtrack-trace 1\nsource unit test\nevents\n"
                                  "alloc gpu:3 5000000000 addr=0x1\nfree gpu:3 addr=0x1\nend 2\n");
  const CliRun run = memtrack({"replay", trace});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("no budget: measuring only"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("5000000000"), std::string::npos) << run.out;
}

// ---- numbers ----

TEST_F(HostileCli, NumbersThatWouldWrapOrMeanNothingAreRefused) {
  const std::string trace = write("a.trace", std::string(node) + "alloc gpu:0 1\nend 1\n");
  const std::vector<std::vector<std::string>> cases = {
      {"sim", "--ops", "-1"},
      {"sim", "--ops", ""},
      {"sim", "--seed", "-1"},
      {"sim", "--seed", "+5"},
      {"sim", "--ops", "18446744073709551616"},
      {"sim", "--shard", "0/0", "--ops", "10"},
      {"sim", "--shard", "1/1", "--ops", "10"},
      {"sim", "--gpus", "0", "--profile", "rtx5090"},
      {"sim", "--cpu-limit", "", "--ops", "10"},
      {"budget", "--gpu", "0:32GiB", "--cpu-limit", ""},
      {"replay", trace, "--gpu", "0:32GiB", "--cpu-limit", ""},
      {"fit", trace, "--gpu", "0:32GiB", "--cpu-limit", ""},
      {"fit", trace, "--profile", "rtx5090", "--gpus", "0"},
      {"fit", trace, "--profile", "rtx5090", "--gpus", ""},
      {"fit", trace, "--profile", "rtx5090", "--gpus", "1024"},
      {"replay", trace, "--profile", "rtx5090", "--gpus", "-2"},
      {"report", trace, "-o", path("r.html"), "--columns", "-5"},
      {"sim", "--profile", "rtx5090+", "--ops", "10"},
      {"sim", "--profile", "300xl4", "--ops", "10"},
      {"fit", trace, "--profile", "rtx5090+"},
  };
  for (const auto& args : cases) {
    const CliRun run = memtrack(args);
    std::string joined;
    for (const std::string& arg : args)
      joined += arg + " ";
    EXPECT_EQ(run.code, 2) << joined << "\n" << run.out << run.err;
    EXPECT_TRUE(run.out.empty() || run.out.find("operations") == std::string::npos)
        << joined << " ran: " << run.out;
    EXPECT_FALSE(run.err.empty()) << joined;
  }
  EXPECT_FALSE(fs::exists(path("r.html")));
}

// Bad input a command returns is printed once, by app.cpp: one line naming the command (and
// the subcommand), exit 2, nothing on standard output.
TEST_F(HostileCli, BadInputIsOneLineNamingTheCommand) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"budget", "--gpu", "0:32GiB", "--fraction", "2/0"}, "memtrack budget: --fraction: "},
      {{"budget", "--gpu", "0:32GiB", "--cpu-limit", "12 apples"},
       "memtrack budget: --cpu-limit: "},
      {{"sim", "--ops", "0"}, "memtrack sim: --ops 0: expected at least 1 operation\n"},
      {{"profiles", "show", "no-such-gpu"}, "memtrack profiles show: "},
      {{"replay", path("missing.trace")}, "memtrack replay: "},
  };
  for (const auto& [args, start] : cases) {
    const CliRun run = memtrack(args);
    EXPECT_EQ(run.code, 2) << start;
    EXPECT_TRUE(run.out.empty()) << start << run.out;
    EXPECT_EQ(run.err.substr(0, start.size()), start) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

TEST_F(HostileCli, AKeyGivenTwiceInABudgetSpecIsRefused) {
  for (const char* spec : {"0:32GiB,usable=24GiB,usable=8GiB", "0:32GiB,fraction=0.5,fraction=1",
                           "0:32GiB,name=a,name=b"}) {
    const CliRun run = memtrack({"budget", "--gpu", spec});
    EXPECT_EQ(run.code, 2) << spec << "\n" << run.out;
    EXPECT_NE(run.err.find("given twice"), std::string::npos) << run.err;
  }
}

TEST_F(HostileCli, ProductionOnlySimSaysItCheckedNothing) {
  const CliRun run = memtrack(
      {"sim", "--profile", "rtx5090", "--ops", "1000", "--production-only", "--no-progress"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out.find("agree"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("not checked"), std::string::npos) << run.out;
}

// ---- terminal safety ----

TEST(TerminalEscaping, ControlsInvalidUtf8AndBidiOverridesAreEscaped) {
  EXPECT_EQ(escape_for_terminal("plain text\twith tab\n"), "plain text\twith tab\n");
  EXPECT_EQ(escape_for_terminal("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(escape_for_terminal(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_for_terminal("\x7f"), "\\x7f");
  EXPECT_EQ(escape_for_terminal("caf\xC3\xA9"), "caf\xC3\xA9");  // é stays
  EXPECT_EQ(escape_for_terminal("\xE2\x80\xAE"
                                "abc"),
            "\\u202eabc");                                                 // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(escape_for_terminal("\xE2\x81\xA6"), "\\u2066");               // LEFT-TO-RIGHT ISOLATE
  EXPECT_EQ(escape_for_terminal("\xC2\x9B"), "\\u009b");                   // C1 CSI
  EXPECT_EQ(escape_for_terminal("\xFF\xFE"), "\\xff\\xfe");                // never UTF-8
  EXPECT_EQ(escape_for_terminal("\xC0\xAF"), "\\xc0\\xaf");                // overlong '/'
  EXPECT_EQ(escape_for_terminal("\xED\xA0\x80"), "\\xed\\xa0\\x80");       // a surrogate
  EXPECT_EQ(escape_for_terminal("\xE2\x82"), "\\xe2\\x82");                // cut short at the end
  EXPECT_EQ(escape_for_terminal("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // an emoji stays
}

TEST(TerminalEscaping, ASequenceSplitAcrossWritesStaysWhole) {
  std::ostringstream target;
  {
    EscapingStream out(target);
    out << "x\xE2\x80";
    out.flush();
    out << "\xAE"
        << "y\xC3";
    out << "\xA9";
  }
  EXPECT_EQ(target.str(), "x\\u202ey\xC3\xA9");
}

TEST_F(HostileCli, TextFromARecordingCannotDriveTheTerminal) {
  const std::string trace = write("evil.trace",
                                  "memtrack-trace 1\nsource \x1b]0;pwned\x07 \xE2\x80\xAEtxt.exe\n"
                                  "memory_fraction 1\ngpu 0 total=1000\nevents\n"
                                  "alloc gpu:0 1\nend 1\n");
  const CliRun run = memtrack({"replay", trace});
  EXPECT_EQ(run.out.find('\x1b'), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("\xE2\x80\xAE"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find('\x07'), std::string::npos) << run.out;
}

// ---- locations in the user's own file ----

TEST_F(HostileCli, ARefusalInAnImportedRecordingNamesItsPlaceInThatFile) {
  // 100 + 2 GiB on a 1 GiB budget: the allocation at traceEvents index 3 is refused.
  const std::string file = write("k.json", kineto(std::uint64_t{2} << 30U));
  const std::string profile =
      write("tiny.profile",
            "name = tiny\n"
            "display_name = a 1 GiB test device\n"
            "cuda_total_bytes = 1073741824 | measured | this test\n"
            "nvidia_smi_total_mib = 1024 | measured | this test\n"
            "compute_capability = 8.9 | measured | this test\n"
            "memory_bandwidth_gbps = 300 | measured | this test\n"
            "memory_fraction = 1 | measured | this test\n"
            "context_overhead_bytes = 0 | measured | this test\n"
            "allocation_granularity_bytes = 2097152 | measured | this test\n");
  const CliRun run = memtrack({"fit", file, "--profile", profile});
  EXPECT_EQ(run.code, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("k.json traceEvents index 3"), std::string::npos) << run.out;
}

// ---- several profiles at once ----

TEST_F(HostileCli, FitOnSeveralProfilesRanksThemByBudgetAndNamesTheSmallestThatFits) {
  // Needs 20 GiB on one GPU (12 + 8 alive together); l4's budget is below it, h200's above.
  const std::string trace = write("need20.trace",
                                  "memtrack-trace 1\nsource unit test\nevents\n"
                                  "alloc gpu:0 12GiB addr=0x1\nalloc gpu:0 8GiB addr=0x2\n"
                                  "free gpu:0 addr=0x1\nalloc gpu:0 4GiB addr=0x3\nend 4\n");
  const CliRun run = memtrack({"fit", trace, "--profile", "h200,l4,rtx5090", "--json"});
  EXPECT_EQ(run.code, 1) << run.out << run.err;  // l4 does not fit
  const auto j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["profiles"].size(), 3U);
  EXPECT_EQ(j["profiles"][0]["profile"], "l4");  // sorted by budget, smallest first
  EXPECT_EQ(j["profiles"][1]["profile"], "rtx5090");
  EXPECT_EQ(j["profiles"][2]["profile"], "h200");
  for (const auto& line : j["profiles"])
    EXPECT_EQ(line["needed_bytes"], std::uint64_t{20} << 30U);
  EXPECT_FALSE(j["profiles"][0]["fits"]);
  // l4: floor(23570219008 x 0.9) = 21213197107; short by 21474836480 - 21213197107.
  EXPECT_EQ(j["profiles"][0]["shortfall_bytes"], 21474836480ULL - 21213197107ULL);
  EXPECT_TRUE(j["profiles"][1]["fits"]);
  EXPECT_EQ(j["profiles"][1]["headroom_bytes"], 25769803776ULL - 21474836480ULL);
  EXPECT_EQ(j["smallest_fitting"], "rtx5090");
  EXPECT_EQ(j["fitting"], 2);

  const CliRun text = memtrack({"fit", trace, "--profile", "rtx5090,h200"});
  EXPECT_EQ(text.code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("smallest profile that fits: rtx5090"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("verdict: FITS on 2 of 2 profiles"), std::string::npos) << text.out;

  const CliRun all = memtrack({"fit", trace, "--profile", "all", "--json"});
  const auto a = nlohmann::json::parse(all.out);
  EXPECT_GE(a["profiles"].size(), 17U);
  for (std::size_t i = 1; i < a["profiles"].size(); ++i) {
    EXPECT_LE(a["profiles"][i - 1]["budget_bytes"].get<std::uint64_t>(),
              a["profiles"][i]["budget_bytes"].get<std::uint64_t>());
  }
  const CliRun bad = memtrack({"fit", trace, "--profile", "rtx5090,,h200"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("empty name"), std::string::npos) << bad.err;
}

TEST_F(HostileCli, BudgetsCanBeGivenInBytesInsteadOfAProfile) {
  const std::string trace = write("need20.trace",
                                  "memtrack-trace 1\nsource unit test\nevents\n"
                                  "alloc gpu:0 12GiB addr=0x1\nalloc gpu:0 8GiB addr=0x2\n"
                                  "end 2\n");
  const CliRun exact = memtrack({"fit", trace, "--gpu-budget", "0:20GiB", "--json"});
  EXPECT_EQ(exact.code, 0) << exact.out << exact.err;
  const auto e = nlohmann::json::parse(exact.out);
  EXPECT_EQ(e["devices"][0]["budget_bytes"], std::uint64_t{20} << 30U);
  EXPECT_EQ(e["devices"][0]["headroom_bytes"], 0);

  const CliRun short_by = memtrack({"fit", trace, "--gpu-budget", "0:19GiB", "--json"});
  EXPECT_EQ(short_by.code, 1);
  EXPECT_EQ(nlohmann::json::parse(short_by.out)["devices"][0]["shortfall_bytes"],
            std::uint64_t{1} << 30U);

  // As `memtrack budget` takes them: 32 GiB at 9/10 is floor(34359738368 x 0.9) = 30923764531.
  const CliRun total = memtrack(
      {"fit", trace, "--gpu", "0:32GiB", "--fraction", "9/10", "--cpu-limit", "1GiB", "--json"});
  EXPECT_EQ(total.code, 0) << total.out << total.err;
  const auto t = nlohmann::json::parse(total.out);
  EXPECT_EQ(t["devices"][0]["budget_bytes"], 30923764531ULL);
  EXPECT_EQ(t["devices"][1]["budget_bytes"], std::uint64_t{1} << 30U);

  const CliRun replay = memtrack({"replay", trace, "--gpu-budget", "0:19GiB"});
  EXPECT_EQ(replay.code, 0) << replay.out << replay.err;  // other budgets: a refusal, not a failure
  EXPECT_NE(replay.out.find("1 refused"), std::string::npos) << replay.out;

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"fit", trace, "--profile", "rtx5090", "--gpu-budget", "0:1GiB"},
        std::vector<std::string>{"fit", trace, "--gpu-budget", "0"},
        std::vector<std::string>{"fit", trace, "--fraction", "0.5"},
        std::vector<std::string>{"fit", trace}}) {
    const CliRun run = memtrack(bad);
    EXPECT_EQ(run.code, 2) << bad.back() << "\n" << run.out;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

TEST_F(HostileCli, AProfileFileIsAnInputNoOutputMayReplace) {
  const std::string profile =
      write("my.profile",
            "name = mine\ndisplay_name = a test device\ncuda_total_bytes = 1073741824 | measured | "
            "this test\nmemory_fraction = 1 | measured | this test\n");
  const std::string before = read(profile);
  const std::string trace = write("a.trace", std::string(node) + "alloc gpu:0 1\nend 1\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"sim", "--profile", profile, "--ops", "10", "--record", profile},
        std::vector<std::string>{"sim", "--profile", profile + "+rtx5090", "--ops", "10",
                                 "--record", profile},
        std::vector<std::string>{"replay", trace, "--profile", profile, "--states", profile},
        std::vector<std::string>{"report", trace, "--profile", profile, "-o", profile}}) {
    const CliRun run = memtrack(args);
    EXPECT_EQ(run.code, 2) << args[0] << "\n" << run.out;
    EXPECT_NE(run.err.find("is the same file as the input"), std::string::npos) << run.err;
    EXPECT_EQ(read(profile), before);
  }
}

TEST_F(HostileCli, EmptyAndZeroArgumentsAreRefused) {
  const std::string trace = write("a.trace", std::string(node) + "alloc gpu:0 1\nend 1\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"sim", "--ops", "0"},
        std::vector<std::string>{"sim", "--ops", "10", "--record", ""},
        std::vector<std::string>{"sim", "--ops", "10", "--out", ""},
        std::vector<std::string>{"replay", trace, "--states", ""},
        std::vector<std::string>{"import", trace, "--from", "", "-o", path("x.trace")},
        std::vector<std::string>{"report", trace, "--format", "", "-o", path("r.html")}}) {
    const CliRun run = memtrack(args);
    EXPECT_EQ(run.code, 2) << args[0] << " " << args[1] << "\n" << run.out;
  }
  ::setenv("GTEST_SHARD_INDEX", "0", 1);
  ::setenv("GTEST_TOTAL_SHARDS", "0", 1);
  const CliRun shard = memtrack({"sim", "--ops", "10", "--no-progress"});
  ::unsetenv("GTEST_SHARD_INDEX");
  ::unsetenv("GTEST_TOTAL_SHARDS");
  EXPECT_EQ(shard.code, 2) << shard.out;
  EXPECT_FALSE(fs::exists(path("r.html")));
  EXPECT_FALSE(fs::exists(path("x.trace")));
}

TEST_F(HostileCli, AFileNameCannotForgeALineOfOutput) {
  const std::string name = path("x\nverdict: FITS on profile rtx5090 (1 GPU)\n.trace");
  std::ofstream(name, std::ios::binary) << node << "alloc gpu:0 1 addr=0x1\nfree gpu:0 addr=0x1\n"
                                        << "free gpu:0 addr=0x1\nend 3\n";
  const CliRun run = memtrack({"fit", name, "--profile", "rtx5090"});
  EXPECT_EQ(run.code, 1) << run.out;  // the double free
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);)
    EXPECT_FALSE(line.starts_with("verdict: FITS")) << run.out;
  EXPECT_NE(run.out.find("x\\x0averdict"), std::string::npos) << run.out;
}

TEST_F(HostileCli, AReportOfAnInconsistentRecordingDoesNotSayFits) {
  const std::string trace = write("double.trace", std::string(node) +
                                                      "alloc gpu:0 100 addr=0x10\n"
                                                      "free gpu:0 addr=0x10\n"
                                                      "free gpu:0 100 addr=0x10\nend 3\n");
  const CliRun run = memtrack({"report", trace, "-o", path("r.html")});
  EXPECT_EQ(run.code, 0) << run.err;
  const std::string html = read(path("r.html"));
  EXPECT_EQ(html.find(">FITS on"), std::string::npos);
  EXPECT_NE(html.find("NOT FITTED: inconsistent recording"), std::string::npos);
  EXPECT_NE(run.out.find("inconsistent recording: 1 "), std::string::npos) << run.out;
}

TEST_F(HostileCli, ARefusalInAnRmmLogNamesItsCsvLine) {
  // Line 3 asks for 2 GiB on a 1 GiB budget.
  const std::string csv = write("log.dev0.csv",
                                "Thread,Time,Action,Pointer,Size,Stream\n"
                                "1,10:00:00.1,allocate,0x1000,1024,0x0\n"
                                "1,10:00:00.2,allocate,0x2000,2147483648,0x0\n");
  const CliRun run = memtrack({"fit", csv, "--gpu-budget", "0:1GiB"});
  EXPECT_EQ(run.code, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("log.dev0.csv line 3 (imported trace line"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace memtrack::cli
