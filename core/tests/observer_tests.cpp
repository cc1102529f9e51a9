#include <memtrack/memtrack.hpp>

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

namespace memtrack {
namespace {

struct Seen {
  ObservedEvent::Kind kind;
  DevicePlacement requested;
  std::uint64_t bytes;
  std::optional<DevicePlacement> resolved;
  std::optional<ErrorKind> error;
  std::uint64_t allocated_after;  // allocated(auto) in the state passed with the event
};

class Recorder final : public MemoryObserver {
 public:
  void on_event(const ObservedEvent& event, const MemoryTracker& after) noexcept override {
    seen.push_back({event.kind, event.requested, event.bytes, event.resolved,
                    event.error ? std::optional<ErrorKind>(event.error->kind) : std::nullopt,
                    after.allocated(Auto{})});
  }
  std::vector<Seen> seen;
};

GpuConfig small() {
  return GpuConfig{.gpus = {{.id = 0, .total_bytes = 100}},
                   .memory_fraction = Fraction::parse("1").value(),
                   .cpu_memory_limit = 10};
}

TEST(Observer, SeesEveryChangeWithItsOutcomeAndTheStateAfter) {
  auto tracker = MemoryTracker::create(small()).value();
  Recorder recorder;
  tracker.set_observer(&recorder);
  ASSERT_TRUE(tracker.allocate(Auto{}, 60));
  EXPECT_FALSE(tracker.allocate(Gpu{0}, 41));
  ASSERT_TRUE(tracker.deallocate(Gpu{0}, 10));
  EXPECT_FALSE(tracker.deallocate(Auto{}, 1));
  tracker.reset_peak();
  EXPECT_FALSE(tracker.reset_peak(Gpu{4}));
  (void)tracker.can_allocate(Gpu{0}, 1);  // queries are not events
  ASSERT_EQ(recorder.seen.size(), 6U);
  EXPECT_EQ(recorder.seen[0].kind, ObservedEvent::Kind::Allocate);
  EXPECT_EQ(recorder.seen[0].requested, DevicePlacement{Auto{}});
  EXPECT_EQ(recorder.seen[0].resolved, DevicePlacement{Gpu{0}});
  EXPECT_EQ(recorder.seen[0].allocated_after, 60U);
  EXPECT_EQ(recorder.seen[1].error, ErrorKind::OutOfMemory);
  EXPECT_EQ(recorder.seen[1].allocated_after, 60U);
  EXPECT_EQ(recorder.seen[2].kind, ObservedEvent::Kind::Deallocate);
  EXPECT_EQ(recorder.seen[2].allocated_after, 50U);
  EXPECT_EQ(recorder.seen[3].error, ErrorKind::AmbiguousDevice);
  EXPECT_EQ(recorder.seen[4].kind, ObservedEvent::Kind::ResetPeakAll);
  EXPECT_EQ(recorder.seen[5].kind, ObservedEvent::Kind::ResetPeak);
  EXPECT_EQ(recorder.seen[5].error, ErrorKind::UnknownDevice);
  tracker.set_observer(nullptr);
  ASSERT_TRUE(tracker.allocate(Cpu{}, 1));
  EXPECT_EQ(recorder.seen.size(), 6U);
}

TEST(Observer, CopiesStartWithoutTheObserver) {
  auto tracker = MemoryTracker::create(small()).value();
  Recorder recorder;
  tracker.set_observer(&recorder);
  MemoryTracker copy = tracker;
  EXPECT_EQ(copy.observer(), nullptr);
  ASSERT_TRUE(copy.allocate(Cpu{}, 1));
  EXPECT_TRUE(recorder.seen.empty());
  EXPECT_EQ(tracker.observer(), &recorder);
}

// Events from many threads arrive one at a time, in the order they took effect: replaying them
// on a fresh tracker reaches the same final state.
TEST(Observer, SharedTrackerReportsEventsInOrder) {
  SharedMemoryTracker shared(MemoryTracker::create(small()).value());
  class Ordered final : public MemoryObserver {
   public:
    void on_event(const ObservedEvent& event, const MemoryTracker& after) noexcept override {
      events.push_back(event);
      if (event.error) errors.push_back(*event.error);
      states.push_back(after.allocated(Auto{}));
    }
    std::vector<ObservedEvent> events;
    std::vector<Error> errors;
    std::vector<std::uint64_t> states;
  } ordered;
  shared.set_observer(&ordered);
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&shared, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::uint64_t bytes = static_cast<std::uint64_t>((i + t) % 7) * 5;
        if (shared.allocate(Auto{}, bytes)) (void)shared.deallocate(Gpu{0}, bytes);
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  auto replay = MemoryTracker::create(small()).value();
  for (std::size_t i = 0; i < ordered.events.size(); ++i) {
    const ObservedEvent& event = ordered.events[i];
    if (event.kind == ObservedEvent::Kind::Allocate) {
      const auto placed = replay.allocate(event.requested, event.bytes);
      ASSERT_EQ(placed.has_value(), event.error == nullptr) << "event " << i;
    } else {
      ASSERT_EQ(replay.deallocate(event.requested, event.bytes).has_value(),
                event.error == nullptr);
    }
    ASSERT_EQ(replay.allocated(Auto{}), ordered.states[i]) << "event " << i;
  }
  EXPECT_EQ(replay.summary(), shared.summary());
}

}  // namespace
}  // namespace memtrack
