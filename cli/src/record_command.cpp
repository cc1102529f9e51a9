// memtrack record -o OUT -- CMD ARGS...: run an unmodified CUDA program with the CUPTI recorder
// injected (CUDA_INJECTION64_PATH) and leave its allocations as a canonical trace.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "summary_json.hpp"

#include <nlohmann/json.hpp>

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
  bool json{false};
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

/// Runs the command with the recorder's environment (under --json its standard output goes to
/// standard error, leaving memtrack's for the JSON); @return its exit code as a shell reports it
Result<int> run_child(const RecordOptions& options, const std::string& library,
                      const std::string& output, const std::string& status, std::ostream& err) {
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
  if (pid < 0) return Error::io_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
    if (options.json) ::dup2(STDERR_FILENO, STDOUT_FILENO);
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
  return static_cast<int>(exit_failure);
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

/// The injection library and the trace's path, checked before anything runs.
struct RecordPlan {
  std::string library;  ///< absolute
  fs::path output;      ///< absolute
};

Result<RecordPlan> plan_record(const RecordOptions& options) {
  if (options.command.empty()) {
    return Error::parse_error("no command: expected 'memtrack record -o OUT -- COMMAND ARGS...'");
  }
  std::string library = options.inject;
  if (library.empty()) {
    auto found = recorder::find_injection_library(executable_path());
    if (!found) {
      return Error::io_error(std::string(recorder::injection_library) +
                             " not found beside memtrack or in ../lib: it is built by the cuda "
                             "preset (cmake --workflow --preset cuda, on a machine with the CUDA "
                             "toolkit); or name it with --inject or MEMTRACK_INJECT_LIBRARY");
    }
    library = found->string();
  }
  std::error_code ec;
  if (!fs::is_regular_file(library, ec)) {
    return Error::io_error("the injection library '" + library + "' does not exist");
  }
  RecordPlan plan{fs::absolute(library).string(), fs::absolute(options.output)};
  if (!fs::is_directory(plan.output.parent_path(), ec)) {
    return Error::io_error("-o " + options.output + ": the folder " +
                           plan.output.parent_path().string() + " does not exist");
  }
  return plan;
}

/// How a recording ended.
enum class RecordEnd {
  recorded,           ///< the recorder wrote the trace
  children_only,      ///< a launcher: its child processes wrote .pidN traces, it wrote none
  nothing_recorded,   ///< no CUDA used, or the recorder could not record (CUPTI taken)
  incomplete,         ///< written, but missing what another CUPTI user took
  unreadable_status,  ///< the recorder's status file says something unexpected
};

std::string_view to_string(RecordEnd end) {
  switch (end) {
    case RecordEnd::recorded:
      return "recorded";
    case RecordEnd::children_only:
      return "children only";
    case RecordEnd::nothing_recorded:
      return "nothing recorded";
    case RecordEnd::incomplete:
      return "incomplete";
    case RecordEnd::unreadable_status:
      return "unreadable status";
  }
  return "unknown";
}

/// What one `memtrack record` came to, printed as text or JSON.
struct RecordResult {
  RecordEnd end{RecordEnd::nothing_recorded};
  std::string problem;  ///< why nothing (or not everything) was recorded; empty when recorded
  std::uint64_t events{0};
  std::uint32_t devices{0};
  int command_exit_code{0};
  std::vector<fs::path> children;  ///< the .pidN traces this run's child processes wrote

  /// The command's exit code, or 1 when it succeeded but nothing (trustworthy) was recorded.
  [[nodiscard]] int exit_code() const {
    const bool usable = end == RecordEnd::recorded || end == RecordEnd::children_only;
    return usable || command_exit_code != 0 ? command_exit_code : static_cast<int>(exit_failure);
  }
};

/// What the recorder's status file (and the traces beside the output) say about the run.
RecordResult read_record_result(const std::string& status, const std::string& command, int code,
                                std::vector<fs::path> children) {
  RecordResult result;
  result.command_exit_code = code;
  result.children = std::move(children);
  if (status.empty()) {
    // torchrun's agent, a shell, a launcher: the processes it started used CUDA
    result.end = result.children.empty() ? RecordEnd::nothing_recorded : RecordEnd::children_only;
    if (result.children.empty()) {
      result.problem =
          "'" + command + "' never initialised CUDA (the driver loads the recorder at cuInit)";
      if (code != 0) result.problem += "; it exited with " + std::to_string(code);
    }
    return result;
  }
  auto parsed = recorder::parse_status(status);
  if (!parsed) {
    result.end = RecordEnd::unreadable_status;
    result.problem = "the recorder's status: " + parsed.error().to_string();
    return result;
  }
  constexpr std::string_view incomplete = "incomplete: ";
  if (parsed->ok) {
    result.end = RecordEnd::recorded;
    result.events = parsed->events;
    result.devices = parsed->devices;
  } else if (parsed->message.starts_with(incomplete)) {
    result.end = RecordEnd::incomplete;
    result.problem = parsed->message.substr(incomplete.size());
  } else {
    result.end = RecordEnd::nothing_recorded;
    result.problem = parsed->message;
  }
  return result;
}

void print_record_text(const RecordResult& result, const RecordOptions& options,
                       std::ostream& err) {
  const std::string& command = options.command[0];
  const std::size_t children = result.children.size();
  switch (result.end) {
    case RecordEnd::recorded:
      err << "memtrack record: " << options.output << ": " << result.events << " events on "
          << result.devices << (result.devices == 1 ? " device" : " devices");
      if (result.command_exit_code != 0)
        err << " ('" << command << "' exited with " << result.command_exit_code << ")";
      break;
    case RecordEnd::children_only:
      err << "memtrack record: '" << command
          << "' never initialised CUDA itself (a launcher or wrapper); its child processes wrote "
          << children << (children == 1 ? " trace" : " traces");
      break;
    case RecordEnd::nothing_recorded:
      err << "memtrack record: nothing recorded: " << result.problem;
      break;
    case RecordEnd::incomplete:
      err << "memtrack record: " << options.output << " is incomplete: " << result.problem;
      break;
    case RecordEnd::unreadable_status:
      err << "memtrack record: " << result.problem;
      break;
  }
  err << "\n";
  for (const fs::path& child : result.children)
    err << "memtrack record: also " << child.string() << " (a child process)\n";
  if (result.end == RecordEnd::children_only && result.command_exit_code != 0)
    err << "memtrack record: '" << command << "' exited with " << result.command_exit_code << "\n";
}

void print_record_json(const RecordResult& result, const RecordOptions& options,
                       std::ostream& out) {
  const bool counted = result.end == RecordEnd::recorded;
  nlohmann::ordered_json json;
  json["output"] = options.output;
  json["command"] = options.command[0];
  json["result"] = to_string(result.end);
  json["events"] = number_or_null(counted, result.events);
  json["devices"] = number_or_null(counted, result.devices);
  json["command_exit_code"] = result.command_exit_code;
  json["child_traces"] = nlohmann::ordered_json::array();
  for (const fs::path& child : result.children)
    json["child_traces"].push_back(child.string());
  json["problem"] = text_or_null(result.problem);
  out << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

Outcome run_record(const RecordOptions& options, std::ostream& out, std::ostream& err) {
  auto plan = plan_record(options);
  if (!plan) return plan.error();
  StatusFile status;
  if (status.path().empty()) {
    return Error::io_error("cannot create a status file in " + fs::temp_directory_path().string());
  }
  const auto before = child_traces(plan->output);
  auto code = run_child(options, plan->library, plan->output.string(), status.path(), err);
  if (!code) return code.error();
  const RecordResult result = read_record_result(status.read(), options.command[0], *code,
                                                 written_since(before, plan->output));
  if (options.json) {
    print_record_json(result, options, out);
  } else {
    print_record_text(result, options, err);
  }
  return static_cast<ExitCode>(result.exit_code());
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
  add_json_flag(*command, options->json,
                "what was recorded (output, command, result: recorded, children only, nothing "
                "recorded, incomplete or unreadable status; events and devices, null unless "
                "recorded; command_exit_code; child_traces; problem, null unless one; the "
                "program's own standard output goes to standard error)");
  run_when_chosen(*command, chosen, options, run_record);
}

}  // namespace memtrack::cli
