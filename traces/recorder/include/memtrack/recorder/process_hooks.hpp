/**
 * @file process_hooks.hpp
 * @brief The injection library's hold on the process it records: the trace written at exit, on
 * SIGINT / SIGTERM and at checkpoints, and a forked child kept off its parent's files. No CUDA in
 * here, so a stand-in process tests it (tests/process_hooks_standin.cpp).
 *
 * Signals: the handler (installed with `SA_SIGINFO`) wakes a writer thread through a pipe and calls
 * the program's previous handler at once, as that handler expects to be called (with its
 * `siginfo_t` when it was installed with `SA_SIGINFO`). When the previous disposition was the
 * default, the writer thread writes the trace, restores the default, unblocks the signal in itself
 * and raises it there: a default fatal signal delivered to any thread ends the whole process (a
 * plain `raise` from a thread that blocks it would leave it pending forever). A previous `SIG_IGN`
 * is left alone (no handler installed).
 *
 * Forks: a `pthread_atfork` child handler runs `forked_child` in the child, which has no writer
 * thread: from then on a signal there takes its previous disposition without a trace, and the
 * child's `write` at `exit()` is the child's business (the injection library writes a `.pidN`
 * trace of what the child did, never the parent's file). A process that leaves with `_exit` runs no
 * exit handler: only the checkpoints the writer thread wrote before it remain.
 */
#pragma once

#include <cstdint>

namespace memtrack::recorder {

/// Why the trace is being written.
enum class WriteReason : std::uint8_t {
  Exit,        ///< the process is exiting (atexit)
  Signal,      ///< SIGINT or SIGTERM arrived
  Checkpoint,  ///< the writer thread's periodic write (the process may still leave with _exit)
};

/// What the hooks call. Plain function pointers: they are called from exit handlers and threads
/// that outlive any object.
struct ProcessHooks {
  /// Writes the trace so far. Called on the writer thread (signals, checkpoints) and at exit; may
  /// be called several times, and concurrently (it serialises itself).
  void (*write)(WriteReason reason){nullptr};
  /// Before a fork, in the forking thread (e.g. take the locks a child must find free).
  void (*before_fork)(){nullptr};
  /// In the parent, after a fork.
  void (*after_fork_parent)(){nullptr};
  /// In a forked child, right after the fork (only the forking thread exists there).
  void (*forked_child)(){nullptr};
  /// Seconds between checkpoints written by the writer thread; 0: none.
  std::uint32_t checkpoint_seconds{0};
};

/**
 * @brief Installs the handlers once per process: the writer thread (created with SIGINT and
 * SIGTERM blocked, so the handler runs on the program's threads), the SIGINT / SIGTERM handlers,
 * an exit handler and the fork handler. A second call does nothing.
 * @return false when the writer thread's pipe could not be created (exit handler still installed)
 */
bool install_process_hooks(const ProcessHooks& hooks);

}  // namespace memtrack::recorder
