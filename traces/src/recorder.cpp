#include <memtrack/traces/recorder.hpp>

namespace memtrack::traces {

Result<std::unique_ptr<TraceRecorder>> TraceRecorder::create(const std::filesystem::path& path,
                                                             const GpuConfig& config,
                                                             std::string source,
                                                             RecorderOptions options) {
  if (options.tag.find_first_of(" \t\n#") != std::string::npos) {
    return Error::parse_error("a recorder tag may not contain blanks or '#': '" + options.tag +
                              "'");
  }
  TraceHeader header;
  header.source = std::move(source);
  header.config = config;
  auto writer = TraceWriter::create(path, header);
  if (!writer) return writer.error();
  return std::unique_ptr<TraceRecorder>(new TraceRecorder(std::move(*writer), std::move(options)));
}

void TraceRecorder::write(const TraceEvent& event) {
  if (error_) return;
  if (auto ok = writer_.write(event); !ok) error_ = ok.error();
}

void TraceRecorder::on_event(const ObservedEvent& observed, const MemoryTracker& after) noexcept {
  try {
    const std::lock_guard lock(mutex_);
    TraceEvent event;
    event.device = observed.requested;
    switch (observed.kind) {
      case ObservedEvent::Kind::Allocate:
        event.kind = TraceEvent::Kind::Allocate;
        event.bytes = observed.bytes;
        if (observed.requested.is_auto() && observed.resolved) {
          event.recorded_resolved = *observed.resolved;
        }
        break;
      case ObservedEvent::Kind::Deallocate:
        event.kind = TraceEvent::Kind::Free;
        event.bytes = observed.bytes;
        break;
      case ObservedEvent::Kind::ResetPeakAll:
        event.kind = TraceEvent::Kind::ResetPeakAll;
        break;
      case ObservedEvent::Kind::ResetPeak:
        event.kind = TraceEvent::Kind::ResetPeak;
        break;
    }
    // Every outcome is the event's own (`free auto 1 result=AmbiguousDevice`,
    // `reset_peak gpu:9 result=UnknownDevice`): a replay checks each one.
    if (observed.error != nullptr) event.recorded_error = observed.error->kind;
    const bool has_attributes =
        event.kind == TraceEvent::Kind::Allocate || event.kind == TraceEvent::Kind::Free;
    if (has_attributes) {
      if (options_.timestamps) {
        event.time_ns =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - start_)
                                           .count());
      }
      event.tag = options_.tag;
    }
    write(event);
    ++operations_;
    if (options_.checkpoint_every != 0 && operations_ % options_.checkpoint_every == 0) {
      for (const std::uint32_t id : after.gpu_ids()) {
        TraceEvent check;
        check.kind = TraceEvent::Kind::Check;
        check.device = Gpu{id};
        check.check_allocated = after.allocated(Gpu{id});
        write(check);
      }
      TraceEvent check;
      check.kind = TraceEvent::Kind::Check;
      check.device = Cpu{};
      check.check_allocated = after.allocated(Cpu{});
      write(check);
    }
  } catch (...) {
    // on_event must not throw: remember the failure and report it from finish().
    if (!error_) error_ = Error::parse_error("the recorder ran out of memory while writing");
  }
}

Result<void> TraceRecorder::finish() {
  const std::lock_guard lock(mutex_);
  if (error_) return *error_;
  return writer_.finish();
}

std::uint64_t TraceRecorder::events() const {
  const std::lock_guard lock(mutex_);
  return writer_.events_written();
}

}  // namespace memtrack::traces
