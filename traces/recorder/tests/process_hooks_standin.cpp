// A stand-in for a recorded program: it installs the injection library's process hooks
// (process_hooks.cpp, the same code libmemtrack_inject.so runs) with a "trace" that is one line
// appended per write, runs a few threads like a real program, and does what MODE says.
//
//   memtrack_process_hooks_standin MODE OUT
//     default     SIGINT / SIGTERM at their default: waits to be signalled
//     handler     a plain handler installed before the hooks (as Python's): exits 4 once called
//     siginfo     an SA_SIGINFO handler installed before (as glog's): writes OUT.info, exits 3
//     fork        forks a child that exits with exit(0); exits 0 after it
//     fork-signal forks a child that sends itself SIGTERM; exits 0 after it
//     checkpoint  checkpoints every second; leaves with _exit(0) after 2.5 s
// It prints "ready" on stdout once the hooks are installed, and "child PID" for a forked child.
#include <memtrack/recorder/process_hooks.hpp>
#include <memtrack/recorder/recording.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using memtrack::recorder::WriteReason;

std::string root_output;
std::string output;  // this process's: root_output, or its .pidN after a fork
std::atomic<bool> stop{false};
volatile sig_atomic_t handled_signal = 0;
volatile sig_atomic_t handled_sender = 0;

void write_line(WriteReason reason) {
  const char* what = reason == WriteReason::Exit     ? "exit"
                     : reason == WriteReason::Signal ? "signal"
                                                     : "checkpoint";
  // slow, as a real trace is: the process must not end before it is on disk
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string line = std::string(what) + " pid=" + std::to_string(::getpid()) + "\n";
  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
  ::close(fd);
}

void forked_child() {
  output = memtrack::recorder::per_process_path(root_output, static_cast<long>(::getpid()));
}

void plain_handler(int signal) {
  handled_signal = signal;
}

void siginfo_handler(int signal, siginfo_t* info, void* /*context*/) {
  handled_signal = signal;
  handled_sender = info != nullptr ? static_cast<sig_atomic_t>(info->si_pid) : -1;
}

bool wait_for_line(const char* word) {
  for (int i = 0; i < 100; ++i) {
    std::FILE* file = std::fopen(output.c_str(), "r");
    if (file != nullptr) {
      char line[128];
      while (std::fgets(line, sizeof line, file) != nullptr) {
        if (std::strncmp(line, word, std::strlen(word)) == 0) {
          std::fclose(file);
          return true;
        }
      }
      std::fclose(file);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODE OUT\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  root_output = output = argv[2];
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  if (mode == "handler") {
    action.sa_handler = plain_handler;
  } else if (mode == "siginfo") {
    action.sa_sigaction = siginfo_handler;
    action.sa_flags = SA_SIGINFO;
  } else {
    action.sa_handler = SIG_DFL;
  }
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  memtrack::recorder::ProcessHooks hooks;
  hooks.write = write_line;
  hooks.forked_child = forked_child;
  hooks.checkpoint_seconds = mode == "checkpoint" ? 1 : 0;
  if (!memtrack::recorder::install_process_hooks(hooks)) return 5;

  std::vector<std::thread> threads;  // a threaded program, as every CUDA program is
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([] {
      while (!stop.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    });
  }
  const auto finish = [&threads](int code) {
    stop.store(true);
    for (auto& thread : threads)
      thread.join();
    return code;
  };
  std::printf("ready\n");
  std::fflush(stdout);

  if (mode == "fork" || mode == "fork-signal") {
    const pid_t child = ::fork();
    if (child == 0) {
      if (mode == "fork-signal") ::kill(::getpid(), SIGTERM);
      std::exit(0);
    }
    std::printf("child %d\n", static_cast<int>(child));
    std::fflush(stdout);
    int status = 0;
    ::waitpid(child, &status, 0);
    return finish(0);
  }
  if (mode == "checkpoint") {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    ::_exit(0);
  }
  for (int i = 0; i < 2000 && handled_signal == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (handled_signal == 0) return finish(6);  // never signalled (default mode ends before this)
  if (mode == "siginfo") {
    const std::string info = output + ".info";
    if (std::FILE* file = std::fopen(info.c_str(), "w"); file != nullptr) {
      std::fprintf(file, "signal=%d sender=%d trace=%d\n", static_cast<int>(handled_signal),
                   static_cast<int>(handled_sender), wait_for_line("signal") ? 1 : 0);
      std::fclose(file);
    }
    return finish(3);
  }
  wait_for_line("signal");
  return finish(4);
}
