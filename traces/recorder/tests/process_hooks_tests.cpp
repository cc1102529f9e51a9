// The injection library's signal and fork handling, in a stand-in process that runs the same code
// (process_hooks_standin.cpp): SIGINT / SIGTERM end a threaded program once the trace is written,
// previous handlers are called as they were installed, a forked child never writes its parent's
// file, and checkpoints are what remains of a process that leaves with _exit.
#include <memtrack/recorder/recording.hpp>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace memtrack::recorder {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

/// The stand-in, started with its stdout on a pipe.
class StandIn {
 public:
  StandIn(const std::string& mode, const fs::path& out) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);  // its own group: a child it forked and left hanging is killed with it
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(MEMTRACK_HOOKS_STANDIN, MEMTRACK_HOOKS_STANDIN, mode.c_str(), out.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
    stdout_ = ::fdopen(fds[0], "r");
  }
  ~StandIn() {
    if (pid_ > 0) ::kill(-pid_, SIGKILL);  // the group: the stand-in and any child left behind
    if (pid_ > 0 && !waited_) ::waitpid(pid_, nullptr, 0);
    if (stdout_ != nullptr) std::fclose(stdout_);
  }
  StandIn(const StandIn&) = delete;
  StandIn& operator=(const StandIn&) = delete;

  /// @return the next line it printed, without the newline ("" at its end)
  std::string line() {
    char text[128];
    if (stdout_ == nullptr || std::fgets(text, sizeof text, stdout_) == nullptr) return {};
    std::string got = text;
    if (!got.empty() && got.back() == '\n') got.pop_back();
    return got;
  }
  [[nodiscard]] pid_t pid() const { return pid_; }

  /// @return its wait status, or nothing when it is still running after `seconds`
  std::optional<int> wait(int seconds) {
    for (int i = 0; i < seconds * 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        waited_ = true;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  pid_t pid_{-1};
  bool waited_{false};
  std::FILE* stdout_{nullptr};
};

class ProcessHooks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("memtrack-hooks-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    out_ = dir_ / "run.trace";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  fs::path out_;
};

TEST_F(ProcessHooks, DefaultSigtermEndsAThreadedProgramAfterTheTraceIsWritten) {
  for (const int signal : {SIGTERM, SIGINT}) {
    fs::remove(out_);
    StandIn program("default", out_);
    ASSERT_EQ(program.line(), "ready");
    ::kill(program.pid(), signal);
    const auto status = program.wait(10);
    ASSERT_TRUE(status.has_value()) << "signal " << signal << " did not end the program";
    ASSERT_TRUE(WIFSIGNALED(*status)) << "exited with " << WEXITSTATUS(*status);
    EXPECT_EQ(WTERMSIG(*status), signal);
    // written once, by the writer thread, before the process ended (no exit handler ran)
    EXPECT_EQ(slurp(out_), "signal pid=" + std::to_string(program.pid()) + "\n");
  }
}

TEST_F(ProcessHooks, APlainPreviousHandlerIsCalledAndTheProgramDecides) {
  StandIn program("handler", out_);
  ASSERT_EQ(program.line(), "ready");
  ::kill(program.pid(), SIGINT);
  const auto status = program.wait(10);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 4);  // its handler ran; it exited on its own
  const std::string pid = std::to_string(program.pid());
  EXPECT_EQ(slurp(out_), "signal pid=" + pid + "\nexit pid=" + pid + "\n");
}

TEST_F(ProcessHooks, AnSaSiginfoPreviousHandlerGetsItsSiginfo) {
  StandIn program("siginfo", out_);
  ASSERT_EQ(program.line(), "ready");
  ::kill(program.pid(), SIGTERM);
  const auto status = program.wait(10);
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(slurp(fs::path(out_.string() + ".info")),
            "signal=15 sender=" + std::to_string(::getpid()) + " trace=1\n");
}

#if defined(__SANITIZE_ADDRESS__)
#define MEMTRACK_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMTRACK_UNDER_ASAN 1
#endif
#endif

TEST_F(ProcessHooks, AForkedChildWritesItsOwnFileNeverItsParents) {
#ifdef MEMTRACK_UNDER_ASAN
  // Under AddressSanitizer the stand-in's forked child at times never finishes (ASan's own fork
  // handling with the parent's writer thread blocked in read, it seems); not yet understood, so
  // the fork cases are proved in the ci, clang and cuda builds only.
  GTEST_SKIP() << "a forked child's exit() hangs under AddressSanitizer (see the comment)";
#endif
  StandIn program("fork", out_);
  ASSERT_EQ(program.line(), "ready");
  const std::string child = program.line();
  ASSERT_TRUE(child.starts_with("child ")) << child;
  const long child_pid = std::stol(child.substr(6));
  const auto status = program.wait(10);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_EQ(slurp(out_), "exit pid=" + std::to_string(program.pid()) + "\n");
  EXPECT_EQ(slurp(per_process_path(out_.string(), child_pid)),
            "exit pid=" + std::to_string(child_pid) + "\n");
}

TEST_F(ProcessHooks, AForkedChildsSignalDoesNotWakeItsParentsWriter) {
#ifdef MEMTRACK_UNDER_ASAN
  GTEST_SKIP() << "a forked child hangs at times under AddressSanitizer (see above)";
#endif
  StandIn program("fork-signal", out_);
  ASSERT_EQ(program.line(), "ready");
  const std::string child = program.line();
  ASSERT_TRUE(child.starts_with("child ")) << child;
  const long child_pid = std::stol(child.substr(6));
  const auto status = program.wait(10);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  // the child ended by its SIGTERM at once (it has no writer thread); the parent wrote at exit only
  EXPECT_EQ(slurp(out_), "exit pid=" + std::to_string(program.pid()) + "\n");
  EXPECT_FALSE(fs::exists(per_process_path(out_.string(), child_pid)));
}

TEST_F(ProcessHooks, CheckpointsRemainOfAProcessThatLeavesWithUnderscoreExit) {
  StandIn program("checkpoint", out_);
  ASSERT_EQ(program.line(), "ready");
  const auto status = program.wait(10);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  const std::string written = slurp(out_);
  const std::string line = "checkpoint pid=" + std::to_string(program.pid()) + "\n";
  EXPECT_TRUE(written.starts_with(line)) << written;  // one a second, at least one in 2.5 s
  EXPECT_EQ(written.find("exit"), std::string::npos) << written;  // _exit runs no exit handler
}

}  // namespace
}  // namespace memtrack::recorder
