// Every example memtrack documents is run, so none can rot: each command line that
// `memtrack SUBCOMMAND --help` shows (cli/src/examples.cpp), and each `$ memtrack ...` in
// README.md, whose output must be what the README shows under it.
#include "cli_test_support.hpp"
#include "examples.hpp"
#include "golden_support.hpp"

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

const fs::path source_dir = MEMTRACK_SOURCE_DIR;

/// A fresh folder that is the working directory while the object lives.
class ScratchFolder {
 public:
  explicit ScratchFolder(std::string_view name)
      : previous_(fs::current_path()),
        path_(fs::temp_directory_path() /
              ("memtrack-" + std::string(name) + "-" + std::to_string(::getpid()) + "-" +
               std::to_string(std::random_device()()))) {
    fs::create_directories(path_);
    fs::current_path(path_);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  ~ScratchFolder() {
    fs::current_path(previous_);
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

 private:
  fs::path previous_;
  fs::path path_;
};

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < line.size()) {
    const std::size_t start = line.find_first_not_of(' ', at);
    if (start == std::string_view::npos) break;
    const std::size_t end = std::min(line.find(' ', start), line.size());
    out.emplace_back(line.substr(start, end - start));
    at = end;
  }
  return out;
}

/// What a shell would make of `folder/prefix*suffix`: the matching names, sorted.
std::vector<std::string> expand_glob(const std::string& word) {
  const std::size_t star = word.find('*');
  if (star == std::string::npos) return {word};
  const std::size_t slash = word.rfind('/', star);
  const std::string folder = slash == std::string::npos ? "." : word.substr(0, slash);
  const std::string prefix = word.substr(slash == std::string::npos ? 0 : slash + 1,
                                         star - (slash == std::string::npos ? 0 : slash + 1));
  const std::string suffix = word.substr(star + 1);
  std::vector<std::string> matches;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= prefix.size() + suffix.size() && name.starts_with(prefix) &&
        name.ends_with(suffix)) {
      matches.push_back(slash == std::string::npos ? name : folder + "/" + name);
    }
  }
  std::sort(matches.begin(), matches.end());
  return matches;
}

/// The arguments after `memtrack` of a shown command line, globs expanded.
std::vector<std::string> arguments_of(std::string_view line) {
  std::vector<std::string> args;
  const auto all = words(line);
  for (std::size_t i = 1; i < all.size(); ++i) {
    for (auto& arg : expand_glob(all[i]))
      args.push_back(std::move(arg));
  }
  return args;
}

/// The text with this checkout's folder (where the profiles are found) named `$SOURCE`.
std::string with_source_named(std::string text) {
  const std::string source = source_dir.string();
  for (std::size_t at = text.find(source); at != std::string::npos;
       at = text.find(source, at + 7)) {
    text.replace(at, source.size(), "$SOURCE");
  }
  return text;
}

bool needs_a_gpu(std::string_view subcommand) {
  return subcommand == "record" || subcommand == "probe";
}

/// The subcommands `memtrack --help` lists.
std::vector<std::string> subcommands() {
  const CliRun help = memtrack({"--help"});
  std::vector<std::string> names;
  const std::size_t from = help.out.find("Subcommands:\n");
  if (from == std::string::npos) return names;
  std::size_t at = from + 13;
  while (at < help.out.size()) {
    const std::size_t end = help.out.find('\n', at);
    const std::string_view line(help.out.data() + at,
                                (end == std::string::npos ? help.out.size() : end) - at);
    if (line.empty()) break;
    if (line.starts_with("  ") && line[2] != ' ') names.push_back(words(line).front());
    at = end == std::string::npos ? help.out.size() : end + 1;
  }
  return names;
}

/// The example lines a subcommand's --help shows.
std::vector<std::string> shown_examples(const std::string& subcommand) {
  const CliRun help = memtrack({subcommand, "--help"});
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < help.out.size()) {
    const std::size_t end = std::min(help.out.find('\n', at), help.out.size());
    const std::string_view line(help.out.data() + at, end - at);
    if (line.starts_with("  memtrack ")) lines.emplace_back(line.substr(2));
    at = end + 1;
  }
  return lines;
}

void copy_in(const fs::path& from, const std::string& to) {
  fs::copy_file(source_dir / from, to, fs::copy_options::overwrite_existing);
}

TEST(DocumentedExamples, EverySubcommandsHelpShowsItsExamples) {
  std::set<std::string> shown;
  const auto names = subcommands();
  ASSERT_EQ(names.size(), 10U) << "memtrack --help lists " << names.size() << " subcommands";
  for (const auto& name : names) {
    const auto lines = shown_examples(name);
    EXPECT_FALSE(lines.empty()) << "memtrack " << name << " --help shows no example";
    for (const auto& line : lines) {
      EXPECT_TRUE(line == "memtrack " + name || line.starts_with("memtrack " + name + " ")) << line;
      shown.insert(line);
    }
  }
  std::set<std::string> table;
  for (const Example& example : examples())
    table.emplace(example.line);
  EXPECT_EQ(shown, table);
}

TEST(DocumentedExamples, EveryExampleInTheHelpRuns) {
  ScratchFolder scratch("examples");
  // The files the examples name, made from the project's own recordings.
  copy_in("traces/recorded/serving-h100-sxm.trace.zst", "serving.trace.zst");
  copy_in("traces/recorded/serving-h100-sxm.trace.zst", "before.trace.zst");
  copy_in("traces/fuzz/corpus/pytorch/snapshot-v4.pickle", "snapshot.pickle");
  copy_in("traces/fuzz/corpus/kineto/trace.json", "kineto.json");
  copy_in("traces/fuzz/corpus/rmm/rmm_log.dev0.csv", "rmm_log.dev0.csv");
  const CliRun after =
      memtrack({"sim", "--profile", "h100-sxm", "--workload", "serving", "--ops", "2000", "--seed",
                "2", "--no-progress", "--record", "after.trace.zst"});
  ASSERT_EQ(after.code, 0) << after.err;

  std::map<std::string_view, int> shown_of;  // per subcommand, the example's position in its help
  for (const Example& example : examples()) {
    const std::string line(example.line);
    ASSERT_EQ(line.find_first_of("\"'\\|<>;&"), std::string::npos)
        << line << ": the runner splits examples on blanks only";
    const auto args = arguments_of(line);
    const CliRun run = memtrack(args);
    if (needs_a_gpu(example.subcommand)) {
      // Here its arguments are accepted and it says what it needs (the cuda preset, a GPU);
      // the cuda preset's own tests run record and probe.
      EXPECT_EQ(run.err.find("for more information"), std::string::npos) << line << "\n" << run.err;
#ifndef MEMTRACK_TEST_CUDA_BUILD
      EXPECT_NE(run.err.find("cuda preset"), std::string::npos) << line << "\n" << run.err;
#endif
      continue;
    }
    // 1 is an answer (does not fit, a divergence): only 2, bad input, is a broken example.
    EXPECT_LT(run.code, 2) << line << "\n" << run.err;
    EXPECT_FALSE(run.out.empty()) << line << " printed nothing";
    const std::string name =
        std::string(example.subcommand) + "-" + std::to_string(++shown_of[example.subcommand]);
    expect_golden(source_dir / "cli/tests/golden/examples" / (name + ".out"),
                  "$ " + line + "\nexit " + std::to_string(run.code) + "\n--- stdout\n" +
                      with_source_named(without_timings(run.out)) + "--- stderr\n" +
                      with_source_named(without_timings(run.err)),
                  line);
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-o" || args[i] == "--record" || args[i] == "--states") {
        EXPECT_TRUE(fs::exists(args[i + 1]) && fs::file_size(args[i + 1]) > 0)
            << line << " wrote no " << args[i + 1];
      }
    }
  }
}

/// One `$ memtrack ...` line of the README and the output shown under it.
struct ShownRun {
  std::string line;
  std::string output;
};

std::vector<ShownRun> readme_runs(const std::string& readme) {
  std::vector<ShownRun> runs;
  runs.reserve(readme.size() / 64);  // `current` stays valid: no reallocation
  bool in_block = false;
  ShownRun* current = nullptr;
  std::size_t at = 0;
  while (at < readme.size()) {
    const std::size_t end = std::min(readme.find('\n', at), readme.size());
    const std::string line = readme.substr(at, end - at);
    at = end + 1;
    if (line.starts_with("```")) {
      in_block = !in_block;
      current = nullptr;  // output never runs on into the next block
      continue;
    }
    if (!in_block) continue;
    if (line.starts_with("$ memtrack ")) {
      current = &runs.emplace_back(ShownRun{line.substr(2), {}});
    } else if (line.starts_with("$ ")) {
      current = nullptr;
    } else if (current != nullptr) {
      current->output += line + "\n";
    }
  }
  return runs;
}

TEST(DocumentedExamples, EveryCommandTheReadmeShowsPrintsWhatItShows) {
  auto readme = traces::read_all(source_dir / "README.md", 1U << 24U);
  ASSERT_TRUE(readme) << readme.error().to_string();
  const auto runs = readme_runs(*readme);
  ASSERT_GE(runs.size(), 5U) << "the README's examples moved";
  // Run where the README's relative names (traces/recorded/...) resolve, writing into scratch.
  ScratchFolder scratch("readme");
  fs::create_directory_symlink(source_dir / "traces", "traces");
  for (const auto& shown : runs) {
    const auto args = arguments_of(shown.line);
    ASSERT_FALSE(args.empty()) << shown.line;
    const CliRun run = memtrack(args);
    EXPECT_LT(run.code, 2) << shown.line << "\n" << run.err;
    // A line shown without output (one that writes a file for the next) is only run.
    if (shown.output.empty()) continue;
    EXPECT_EQ(without_timings(run.out), without_timings(shown.output)) << shown.line;
  }
}

TEST(DocumentedExamples, VersionPrintsTheProjectsVersion) {
  const CliRun run = memtrack({"--version"});
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.out, "memtrack " MEMTRACK_PROJECT_VERSION "\n");
  EXPECT_NE(memtrack({"--help"}).out.find("--version"), std::string::npos);
}

}  // namespace
}  // namespace memtrack::cli
