#include <memtrack/recorder/process_hooks.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <thread>

namespace memtrack::recorder {
namespace {

/// Everything the handlers read: written once by install_process_hooks, before any handler is
/// installed, and never destroyed (exit handlers and the writer thread outlive every object).
struct Hooks {
  ProcessHooks calls;
  pid_t owner{0};  ///< the process whose writer thread exists; a forked child has another pid
  int pipe_read{-1};
  int pipe_write{-1};
  struct sigaction previous_int {};
  struct sigaction previous_term {};
};

Hooks& hooks() {
  static Hooks* instance = new Hooks;
  return *instance;
}

const struct sigaction& previous_for(int signal) {
  return signal == SIGINT ? hooks().previous_int : hooks().previous_term;
}

bool is_default(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_DFL;
}

/// Ends the process as `signal` would have: its default action, delivered to this thread, which
/// unblocks it first (the writer thread was created with it blocked). Async-signal-safe.
[[noreturn]] void end_with(int signal) {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  ::raise(signal);  // the default action of SIGINT / SIGTERM ends every thread
  ::kill(::getpid(), signal);
  ::_exit(128 + signal);  // not reached unless the signal was somehow caught again
}

/// The handler: wake the writer, then what the program had asked for, at once.
void on_signal(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const bool has_writer = ::getpid() == hooks().owner && hooks().pipe_write >= 0;
  if (has_writer) {
    const auto number = static_cast<unsigned char>(signal);
    const ssize_t ignored = ::write(hooks().pipe_write, &number, 1);
    (void)ignored;
  }
  const struct sigaction& previous = previous_for(signal);
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(signal, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);  // the program's own handler (Python's KeyboardInterrupt...)
  } else if (!has_writer) {
    end_with(signal);  // a forked child: nobody to write a trace, the default action now
  }
  errno = saved_errno;
}

void writer_loop() {
  const std::uint32_t seconds = hooks().calls.checkpoint_seconds;
  const int timeout_ms = seconds == 0 ? -1 : static_cast<int>(std::min(seconds, 86400U) * 1000U);
  for (;;) {
    pollfd ready{hooks().pipe_read, POLLIN, 0};
    const int polled = ::poll(&ready, 1, timeout_ms);
    if (polled < 0 && errno == EINTR) continue;
    if (polled < 0) return;
    if (polled == 0) {
      hooks().calls.write(WriteReason::Checkpoint);
      continue;
    }
    unsigned char signal = 0;
    const ssize_t got = ::read(hooks().pipe_read, &signal, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got != 1) return;
    hooks().calls.write(WriteReason::Signal);
    // Nobody else handles it: end the process as the signal would have, the trace written.
    if (is_default(previous_for(signal))) end_with(signal);
  }
}

void at_exit() {
  hooks().calls.write(WriteReason::Exit);
}

void before_fork() {
  if (hooks().calls.before_fork != nullptr) hooks().calls.before_fork();
}

void after_fork_in_parent() {
  if (hooks().calls.after_fork_parent != nullptr) hooks().calls.after_fork_parent();
}

void after_fork_in_child() {
  Hooks& h = hooks();
  // The writer thread stayed in the parent; its pipe is the parent's business.
  if (h.pipe_read >= 0) ::close(h.pipe_read);
  if (h.pipe_write >= 0) ::close(h.pipe_write);
  h.pipe_read = -1;
  h.pipe_write = -1;
  if (h.calls.forked_child != nullptr) h.calls.forked_child();
}

}  // namespace

bool install_process_hooks(const ProcessHooks& calls) {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return true;
  Hooks& h = hooks();
  h.calls = calls;
  h.owner = ::getpid();
  std::atexit(at_exit);
  ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  h.pipe_read = fds[0];
  h.pipe_write = fds[1];

  // The writer thread starts with both signals blocked, so the handler runs on the program's
  // threads and the thread that ends the process (end_with) is the only one that unblocks them.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &blocked, &old);
  std::thread(writer_loop).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  struct sigaction action {};
  action.sa_sigaction = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  for (const int signal : {SIGINT, SIGTERM}) {
    struct sigaction& previous = signal == SIGINT ? h.previous_int : h.previous_term;
    sigaction(signal, nullptr, &previous);
    if ((previous.sa_flags & SA_SIGINFO) == 0 && previous.sa_handler == SIG_IGN) continue;
    sigaction(signal, &action, nullptr);
  }
  return true;
}

}  // namespace memtrack::recorder
