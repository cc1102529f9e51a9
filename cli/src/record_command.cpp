// memtrack record -o OUT -- CMD ARGS...: run an unmodified CUDA program with the CUPTI recorder
// injected (CUDA_INJECTION64_PATH) and leave its allocations as a canonical trace.
#include "app.hpp"
#include "commands.hpp"

#include <memtrack/recorder/recording.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <vector>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

struct RecordOptions {
  std::string output;
  std::string inject;
  std::vector<std::string> command;
};

volatile sig_atomic_t child_pid = 0;

void forward_signal(int signal) {
  if (child_pid > 0) ::kill(static_cast<pid_t>(child_pid), signal);
}

/// A private status file for the library to write, removed when done.
class StatusFile {
 public:
  StatusFile() {
    std::string name = (fs::temp_directory_path() / "memtrack-record-XXXXXX").string();
    const int fd = ::mkstemp(name.data());
    if (fd >= 0) {
      ::close(fd);
      path_ = name;
    }
  }
  ~StatusFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  StatusFile(const StatusFile&) = delete;
  StatusFile& operator=(const StatusFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string read() const {
    std::ifstream file(path_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  std::string path_;
};

/// Runs the command with the recorder's environment; @return its exit code as a shell reports it
int run_child(const RecordOptions& options, const std::string& library, const std::string& output,
              const std::string& status, std::ostream& err) {
  std::vector<char*> argv;
  for (const std::string& arg : options.command)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  // SIGINT from a terminal reaches the whole process group, the command included: memtrack waits
  // for it to write its trace. SIGTERM and SIGHUP sent to memtrack alone are passed on.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  struct sigaction old_int {};
  struct sigaction old_term {};
  struct sigaction old_hup {};
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  sigaction(SIGHUP, &forward, &old_hup);
  err.flush();

  const pid_t pid = ::fork();
  if (pid < 0) {
    err << "memtrack record: fork: " << std::strerror(errno) << "\n";
    return exit_bad_input;
  }
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
    ::setenv(recorder::injection_env, library.c_str(), 1);
    ::setenv(recorder::output_env, output.c_str(), 1);
    ::setenv(recorder::status_env, status.c_str(), 1);
    ::setenv(recorder::pid_env, std::to_string(::getpid()).c_str(), 1);
    ::execvp(argv[0], argv.data());
    const std::string message =
        "memtrack record: cannot run '" + options.command[0] + "': " + std::strerror(errno) + "\n";
    const ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;
    ::_exit(127);
  }
  child_pid = pid;
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  child_pid = 0;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return exit_failure;
}

/// The `.pidN` traces beside `output` (what child processes of a recorded command write), with
/// their modification times.
std::map<fs::path, fs::file_time_type> child_traces(const fs::path& output) {
  const std::string stem = recorder::per_process_path(output.filename().string(), 0);
  const std::string prefix = stem.substr(0, stem.find(".pid0") + 4);
  std::map<fs::path, fs::file_time_type> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name != output.filename().string()) {
      found.emplace(entry.path(), fs::last_write_time(entry.path(), ec));
    }
  }
  return found;
}

/// The child traces this run wrote: new since `before`, or rewritten. (Not "newer than the
/// start": the file system's clock is coarser than the one `now()` reads, so a file written just
/// after the start can carry an earlier time.)
std::vector<fs::path> written_since(const std::map<fs::path, fs::file_time_type>& before,
                                    const fs::path& output) {
  std::vector<fs::path> written;
  for (const auto& [path, time] : child_traces(output)) {
    const auto old = before.find(path);
    if (old == before.end() || old->second != time) written.push_back(path);
  }
  return written;
}

std::string executable_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.string();
}

int run_record(const RecordOptions& options, std::ostream& err) {
  if (options.command.empty()) {
    err << "memtrack record: no command: expected 'memtrack record -o OUT -- COMMAND ARGS...'\n";
    return exit_bad_input;
  }
  std::string library = options.inject;
  if (library.empty()) {
    auto found = recorder::find_injection_library(executable_path());
    if (!found) {
      err << "memtrack record: " << recorder::injection_library
          << " not found beside memtrack or in ../lib: it is built by the cuda preset (cmake "
             "--workflow --preset cuda, on a machine with the CUDA toolkit); or name it with "
             "--inject or MEMTRACK_INJECT_LIBRARY\n";
      return exit_bad_input;
    }
    library = found->string();
  }
  std::error_code ec;
  if (!fs::is_regular_file(library, ec)) {
    err << "memtrack record: the injection library '" << library << "' does not exist\n";
    return exit_bad_input;
  }
  library = fs::absolute(library).string();
  const fs::path output = fs::absolute(options.output);
  if (!fs::is_directory(output.parent_path(), ec)) {
    err << "memtrack record: -o " << options.output << ": the folder "
        << output.parent_path().string() << " does not exist\n";
    return exit_bad_input;
  }
  StatusFile status;
  if (status.path().empty()) {
    err << "memtrack record: cannot create a status file in " << fs::temp_directory_path().string()
        << "\n";
    return exit_bad_input;
  }

  const auto before = child_traces(output);
  const int code = run_child(options, library, output.string(), status.path(), err);
  const std::vector<fs::path> children = written_since(before, output);
  const auto name_children = [&err, &children] {
    for (const fs::path& child : children)
      err << "memtrack record: also " << child.string() << " (a child process)\n";
  };
  const std::string text = status.read();
  if (text.empty()) {
    if (!children.empty()) {
      // torchrun's agent, a shell, a launcher: the processes it started used CUDA
      err << "memtrack record: '" << options.command[0]
          << "' never initialised CUDA itself (a launcher or wrapper); its child processes "
             "wrote "
          << children.size() << (children.size() == 1 ? " trace" : " traces") << "\n";
      name_children();
      if (code != 0)
        err << "memtrack record: '" << options.command[0] << "' exited with " << code << "\n";
      return code;
    }
    err << "memtrack record: nothing recorded: '" << options.command[0]
        << "' never initialised CUDA (the driver loads the recorder at cuInit)";
    if (code != 0) err << "; it exited with " << code;
    err << "\n";
    return code != 0 ? code : exit_failure;
  }
  auto parsed = recorder::parse_status(text);
  if (!parsed) {
    err << "memtrack record: the recorder's status: " << parsed.error().to_string() << "\n";
    name_children();
    return code != 0 ? code : exit_failure;
  }
  if (!parsed->ok) {
    constexpr std::string_view incomplete = "incomplete: ";
    if (parsed->message.starts_with(incomplete)) {
      // written, but missing what another CUPTI user took: not a trace to trust
      err << "memtrack record: " << options.output
          << " is incomplete: " << parsed->message.substr(incomplete.size()) << "\n";
    } else {
      err << "memtrack record: nothing recorded: " << parsed->message << "\n";
    }
    name_children();
    return code != 0 ? code : exit_failure;
  }
  err << "memtrack record: " << options.output << ": " << parsed->events << " events on "
      << parsed->devices << (parsed->devices == 1 ? " device" : " devices");
  if (code != 0) err << " ('" << options.command[0] << "' exited with " << code << ")";
  err << "\n";
  name_children();
  return code;
}

}  // namespace

void add_record_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<RecordOptions>();
  CLI::App* command = app.add_subcommand(
      "record",
      "Run an unmodified CUDA program (PyTorch, TensorRT, a server...) with memtrack's CUPTI "
      "recorder injected, and write every device allocation and free it makes as a trace: "
      "a device table, a baseline, then events with device, bytes, address, stream and time. "
      "The trace is written when the program exits, also on SIGINT or SIGTERM. Exit code: the "
      "program's; 1 when it succeeded but nothing could be recorded (CUPTI taken by a profiler, "
      "no CUDA used); 2 bad arguments. Needs libmemtrack_inject.so from the cuda preset.");
  command
      ->add_option("-o,--output", options->output,
                   "The trace to write (.zst compresses); written atomically")
      ->required();
  command->add_option("--inject", options->inject,
                      "The injection library (default: libmemtrack_inject.so beside memtrack or "
                      "in ../lib, or MEMTRACK_INJECT_LIBRARY)");
  command->add_option("command", options->command, "-- then the program and its arguments")
      ->expected(-1);
  run_when_chosen(*command, chosen, options,
                  [](const RecordOptions& o, std::ostream& /*out*/, std::ostream& err) {
                    return run_record(o, err);
                  });
}

}  // namespace memtrack::cli
