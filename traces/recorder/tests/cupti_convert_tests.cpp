// CUPTI activity records and driver callbacks -> trace events, on synthetic records laid out as
// the CUPTI of this toolkit lays them out (no GPU needed).
#include <memtrack/recorder/cupti_convert.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>
#include <memtrack/traces/writer.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace memtrack::recorder {
namespace {

using traces::TraceEvent;

CUpti_ActivityMemory4 memory_record(CUpti_ActivityMemoryOperationType operation,
                                    CUpti_ActivityMemoryKind kind, std::uint32_t device,
                                    std::uint64_t address, std::uint64_t bytes,
                                    std::uint64_t time) {
  CUpti_ActivityMemory4 record{};
  record.kind = CUPTI_ACTIVITY_KIND_MEMORY2;
  record.memoryOperationType = operation;
  record.memoryKind = kind;
  record.deviceId = device;
  record.address = address;
  record.bytes = bytes;
  record.timestamp = time;
  record.streamId = 7;
  return record;
}

CUpti_ActivityMemory4 alloc_record(std::uint64_t address, std::uint64_t bytes, std::uint64_t time,
                                   std::uint32_t device = 0) {
  return memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                       CUPTI_ACTIVITY_MEMORY_KIND_DEVICE, device, address, bytes, time);
}

CUpti_ActivityMemory4 free_record(std::uint64_t address, std::uint64_t bytes, std::uint64_t time,
                                  std::uint32_t device = 0) {
  return memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE,
                       CUPTI_ACTIVITY_MEMORY_KIND_DEVICE, device, address, bytes, time);
}

template <class Record>
void feed(CuptiConverter& converter, const Record& record) {
  converter.consume(reinterpret_cast<const CUpti_Activity&>(record));
}

traces::DeviceRecord device_record(std::uint32_t id, std::uint64_t total, std::uint64_t free) {
  traces::DeviceRecord record;
  record.id = id;
  record.name = "NVIDIA H200";
  record.uuid = "GPU-" + std::to_string(id);
  record.compute_capability = "9.0";
  record.total_global_mem = total;
  record.total_at_start = total;
  record.free_at_start = free;
  return record;
}

/// A CUPTI buffer: records back to back, as CUPTI fills one.
class Buffer {
 public:
  template <class Record>
  void add(const Record& record) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + sizeof(Record));
    std::memcpy(bytes_.data() + at, &record, sizeof(Record));
  }
  std::uint8_t* data() { return reinterpret_cast<std::uint8_t*>(bytes_.data()); }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

TEST(CuptiConvert, DeviceAllocationsAndFreesBecomeEvents) {
  CuptiConverter converter;
  feed(converter, alloc_record(0x7f0000000000, 1_MiB + 1, 100));
  feed(converter, free_record(0x7f0000000000, 1_MiB + 1, 200));
  const Conversion conversion = converter.finish("test");
  ASSERT_EQ(conversion.events.size(), 2U);
  const TraceEvent& alloc = conversion.events[0];
  EXPECT_EQ(alloc.kind, TraceEvent::Kind::Allocate);
  EXPECT_EQ(alloc.device, DevicePlacement(Gpu{0}));
  EXPECT_EQ(alloc.bytes, 1_MiB + 1);
  EXPECT_EQ(alloc.address, 0x7f0000000000U);
  EXPECT_EQ(alloc.time_ns, 100U);
  EXPECT_FALSE(alloc.stream.has_value());  // cudaMalloc is not stream-ordered
  EXPECT_EQ(traces::format_event(conversion.events[1]),
            "free gpu:0 1048577 t=200 addr=0x7f0000000000");
  EXPECT_EQ(converter.counts().memory_records, 2U);
}

TEST(CuptiConvert, KindsOfMemoryGoWhereTheyBelong) {
  CuptiConverter converter;
  auto pinned = memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                              CUPTI_ACTIVITY_MEMORY_KIND_PINNED, 0, 0x1000, 4096, 1);
  auto managed = memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                               CUPTI_ACTIVITY_MEMORY_KIND_MANAGED, 0, 0x2000, 4096, 2);
  auto statics = memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                               CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC, 1, 0x3000, 512, 3);
  auto array = memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                             CUPTI_ACTIVITY_MEMORY_KIND_ARRAY, 1, 0x4000, 8192, 4);
  auto pooled = alloc_record(0x5000, 300, 5, 1);
  pooled.isAsync = 1;
  pooled.streamId = 13;
  pooled.memoryPoolConfig.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL;
  auto invalid = alloc_record(0x6000, 1, 6);
  invalid.memoryOperationType = CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_INVALID;
  for (const auto& record : {pinned, managed, statics, array, pooled, invalid}) {
    feed(converter, record);
  }
  const Conversion conversion = converter.finish("test");
  ASSERT_EQ(conversion.events.size(), 4U);
  EXPECT_EQ(traces::format_event(conversion.events[0]),
            "alloc cpu 4096 t=1 addr=0x1000 tag=pinned");
  EXPECT_EQ(conversion.events[1].device, DevicePlacement(Gpu{1}));
  EXPECT_EQ(conversion.events[1].tag, "static");
  EXPECT_EQ(conversion.events[2].tag, "array");
  EXPECT_EQ(conversion.events[3].tag, "pool");
  EXPECT_EQ(conversion.events[3].stream, 13U);          // stream-ordered: the stream is kept
  EXPECT_EQ(converter.counts().unaccounted_kinds, 1U);  // managed
  EXPECT_EQ(converter.counts().other_records, 1U);      // the invalid operation
}

TEST(CuptiConvert, PoolRecordsBecomeMarksWithGrantedAndUsedBytes) {
  CuptiConverter converter;
  CUpti_ActivityMemoryPool3 pool{};
  pool.kind = CUPTI_ACTIVITY_KIND_MEMORY_POOL;
  pool.memoryPoolOperationType = CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_CREATED;
  pool.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL;
  pool.deviceId = 2;
  pool.address = 0xabc000;
  pool.size = 32_MiB;
  pool.utilizedSize = 3_MiB;
  pool.timestamp = 50;
  feed(converter, pool);
  pool.memoryPoolOperationType = CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_TRIMMED;
  pool.size = 4_MiB;
  pool.timestamp = 60;
  feed(converter, pool);
  const Conversion conversion = converter.finish("test");
  std::vector<std::string> lines;
  for (const auto& event : conversion.events)
    lines.push_back(traces::format_event(event));
  // the pool's size is held by the trace: 32 MiB granted, trimmed to 4 MiB (28 MiB returned)
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "mark pool created gpu:2 pool=0xabc000 size=33554432 utilized=3145728 "
                       "release_threshold=0 t=50",
                       "alloc gpu:2 33554432 t=50 tag=pool-reserve",
                       "free gpu:2 29360128 t=60 tag=pool-reserve",
                       "mark pool trimmed gpu:2 pool=0xabc000 size=4194304 utilized=3145728 "
                       "release_threshold=0 t=60",
                   }));
  EXPECT_EQ(converter.counts().pool_records, 2U);
}

TEST(CuptiConvert, OutOfOrderDeliveryIsSortedByTimeTiesInArrivalOrder) {
  CuptiConverter converter;
  // CUPTI delivers the buffer holding the free before the one holding its allocation
  feed(converter, free_record(0xa000, 64, 300));
  feed(converter, alloc_record(0xb000, 32, 250));
  feed(converter, alloc_record(0xa000, 64, 100));
  feed(converter, free_record(0xb000, 32, 300));  // same time as the first free: after it
  const Conversion conversion = converter.finish("test");
  ASSERT_EQ(conversion.events.size(), 4U);
  EXPECT_EQ(conversion.events[0].time_ns, 100U);
  EXPECT_EQ(conversion.events[1].time_ns, 250U);
  EXPECT_EQ(conversion.events[2].address, 0xa000U);
  EXPECT_EQ(conversion.events[3].address, 0xb000U);
}

TEST(CuptiConvert, BuffersAreReadRecordByRecordAcrossBoundaries) {
  CuptiConverter converter;
  Buffer first;
  first.add(alloc_record(0x1000, 10, 1));
  CUpti_ActivityMemoryPool3 pool{};
  pool.kind = CUPTI_ACTIVITY_KIND_MEMORY_POOL;
  pool.memoryPoolOperationType = CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_CREATED;
  pool.timestamp = 2;
  first.add(pool);
  first.add(alloc_record(0x2000, 20, 3));
  Buffer second;  // the frees arrive in the next buffer
  second.add(free_record(0x2000, 20, 4));
  second.add(free_record(0x1000, 10, 5));
  Buffer empty;

  auto read_first = converter.consume_buffer(first.data(), first.size());
  ASSERT_TRUE(read_first) << read_first.error().to_string();
  EXPECT_EQ(*read_first, 3U);
  auto read_empty = converter.consume_buffer(empty.data(), 0);
  ASSERT_TRUE(read_empty) << read_empty.error().to_string();
  EXPECT_EQ(*read_empty, 0U);
  auto read_second = converter.consume_buffer(second.data(), second.size());
  ASSERT_TRUE(read_second);
  EXPECT_EQ(*read_second, 2U);

  const Conversion conversion = converter.finish("test");
  ASSERT_EQ(conversion.events.size(), 5U);
  std::vector<std::uint64_t> times;
  for (const auto& event : conversion.events)
    times.push_back(event.time_ns.value_or(2));
  EXPECT_EQ(times, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(conversion.events[4].address, 0x1000U);
}

TEST(CuptiConvert, VirtualMemoryIsAccountedFromCreateToTheLastOfReleaseAndUnmap) {
  CuptiConverter converter;
  const auto call = [&converter](VmmCall::Kind kind, std::uint64_t handle, std::uint64_t size,
                                 std::uint64_t address, std::uint64_t time) {
    VmmCall c;
    c.kind = kind;
    c.handle = handle;
    c.size = size;
    c.address = address;
    c.device = Gpu{0};
    c.time_ns = time;
    converter.on_vmm(c);
  };
  using K = VmmCall::Kind;
  // handle 1: released while mapped -> freed at the unmap (t=40)
  call(K::Create, 1, 4_MiB, 0, 10);
  call(K::Map, 1, 4_MiB, 0x10000000, 11);
  call(K::Release, 1, 0, 0, 20);
  // handle 2 and 3 mapped side by side, one unmap covers both
  call(K::Create, 2, 2_MiB, 0, 21);
  call(K::Create, 3, 2_MiB, 0, 22);
  call(K::Map, 2, 2_MiB, 0x20000000, 23);
  call(K::Map, 3, 2_MiB, 0x20200000, 24);
  call(K::Release, 2, 0, 0, 25);
  call(K::Release, 3, 0, 0, 26);
  call(K::Unmap, 0, 4_MiB, 0x20000000, 30);
  call(K::Unmap, 0, 4_MiB, 0x10000000, 40);
  // handle 4: never mapped -> freed at its release
  call(K::Create, 4, 6_MiB, 0, 50);
  call(K::Release, 4, 0, 0, 51);
  // a release of a handle never created, an unmap of nothing mapped
  call(K::Release, 99, 0, 0, 60);
  call(K::Unmap, 0, 2_MiB, 0x90000000, 61);

  const Conversion conversion = converter.finish("test");
  std::vector<std::string> lines;
  for (const auto& event : conversion.events)
    lines.push_back(traces::format_event(event));
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "alloc gpu:0 4194304 t=10 tag=vmm",
                       "alloc gpu:0 2097152 t=21 tag=vmm",
                       "alloc gpu:0 2097152 t=22 tag=vmm",
                       "free gpu:0 2097152 t=30 tag=vmm",
                       "free gpu:0 2097152 t=30 tag=vmm",
                       "free gpu:0 4194304 t=40 tag=vmm",
                       "alloc gpu:0 6291456 t=50 tag=vmm",
                       "free gpu:0 6291456 t=51 tag=vmm",
                   }));
  EXPECT_EQ(converter.counts().vmm_creates, 4U);
  EXPECT_EQ(converter.counts().vmm_maps, 3U);
  EXPECT_EQ(converter.counts().vmm_unmaps, 3U);
  EXPECT_EQ(converter.counts().vmm_releases, 5U);
  EXPECT_EQ(converter.counts().vmm_unknown_handles, 2U);
}

TEST(CuptiConvert, DevicesGiveTheHeaderABaselineAndTheirBudgets) {
  CuptiConverter converter;
  converter.set_host_memory(64_GiB);
  converter.add_device(device_record(1, 140_GiB, 139_GiB), 5);
  converter.add_device(device_record(0, 140_GiB, 130_GiB), 3);
  // a second context on device 0: the header keeps the first; the baseline grows by what the
  // device shows in use beyond what the trace holds there (11 GiB - 10 GiB)
  converter.add_device(device_record(0, 140_GiB, 129_GiB), 9);
  converter.add_dropped(4);
  const Conversion conversion = converter.finish("memtrack record: python serve.py");
  EXPECT_EQ(conversion.header.source, "memtrack record: python serve.py");
  ASSERT_EQ(conversion.header.devices.size(), 2U);
  EXPECT_EQ(conversion.header.devices[0].id, 0U);
  EXPECT_EQ(conversion.header.devices[0].free_at_start, 130_GiB);
  ASSERT_TRUE(conversion.header.config);
  const GpuConfig& config = *conversion.header.config;
  ASSERT_EQ(config.gpus.size(), 2U);
  EXPECT_EQ(config.gpus[0].total_bytes, 140_GiB);
  EXPECT_EQ(config.gpus[0].name, "NVIDIA H200");
  EXPECT_EQ(config.memory_fraction, Fraction::of(1, 1).value());
  EXPECT_EQ(config.cpu_memory_limit, 64_GiB);
  ASSERT_EQ(conversion.events.size(), 4U);
  EXPECT_EQ(traces::format_event(conversion.events[0]), "baseline gpu:0 10737418240 t=3");
  EXPECT_EQ(traces::format_event(conversion.events[1]), "baseline gpu:1 1073741824 t=5");
  EXPECT_EQ(traces::format_event(conversion.events[2]), "baseline gpu:0 1073741824 t=9");
  EXPECT_EQ(conversion.events[3].kind, TraceEvent::Kind::Mark);  // dropped records: incomplete
  EXPECT_NE(conversion.events[3].text.find("incomplete: CUPTI dropped 4"), std::string::npos);
}

TEST(CuptiConvert, AConversionIsATraceThatReplaysInLockstep) {
  CuptiConverter converter;
  converter.add_device(device_record(0, 80_GiB, 79_GiB), 1);
  std::uint64_t time = 10;
  for (std::uint64_t i = 0; i < 200; ++i) {
    feed(converter, alloc_record(0x7000000000 + i * 0x100000, (i + 1) * 4097, time++));
  }
  VmmCall create;
  create.kind = VmmCall::Kind::Create;
  create.handle = 5;
  create.size = 2_MiB;
  create.device = Gpu{0};
  create.time_ns = time++;
  converter.on_vmm(create);
  for (std::uint64_t i = 0; i < 200; ++i) {
    feed(converter, free_record(0x7000000000 + i * 0x100000, (i + 1) * 4097, time++));
  }
  const Conversion conversion = converter.finish("test");
  const std::string text = traces::format_trace(conversion.header, conversion.events);
  auto reader = traces::TraceReader::from_source(traces::memory_source(text, "c.trace"), "c.trace");
  ASSERT_TRUE(reader) << reader.error().to_string();
  auto replayer = traces::Replayer::create(*reader->header().config, traces::ReplayOptions{});
  ASSERT_TRUE(replayer);
  auto replayed = replayer->replay(*reader, {});
  ASSERT_TRUE(replayed) << replayed.error().to_string();
  const auto& summary = replayer->summary();
  EXPECT_FALSE(summary.failure.has_value());
  EXPECT_EQ(summary.frees_by_address, 200U);
  // peak: the baseline, every allocation at once, and the VMM handle still held at the end
  std::uint64_t all = 0;
  for (std::uint64_t i = 0; i < 200; ++i)
    all += (i + 1) * 4097;
  EXPECT_EQ(summary.high_water.at(Gpu{0}), 1_GiB + all + 2_MiB);
  EXPECT_EQ(replayer->tracker().allocated(Gpu{0}), 1_GiB + 2_MiB);
}

std::vector<std::string> lines_of(const Conversion& conversion) {
  std::vector<std::string> lines;
  for (const auto& event : conversion.events)
    lines.push_back(traces::format_event(event));
  return lines;
}

CUpti_ActivityMemory4 pooled(CUpti_ActivityMemoryOperationType operation, std::uint64_t address,
                             std::uint64_t bytes, std::uint64_t pool_size, std::uint64_t time) {
  auto record =
      memory_record(operation, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE, 0, address, bytes, time);
  record.isAsync = 1;
  record.memoryPoolConfig.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL;
  record.memoryPoolConfig.address = 0x900000000;
  record.memoryPoolConfig.pool.size = pool_size;
  record.memoryPoolConfig.utilizedSize = 0;  // not used: the requested bytes live are counted
  return record;
}

TEST(CuptiConvert, PooledRecordsMakeTheTraceHoldThePoolsSize) {
  using Op = CUpti_ActivityMemoryOperationType;
  const Op alloc = CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION;
  const Op release = CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE;
  CuptiConverter converter;
  // delivered out of order (another stream's buffer first): the reserve follows the time order
  feed(converter, pooled(release, 0xa00, 1_MiB, 32_MiB, 30));
  feed(converter, pooled(alloc, 0xa00, 1_MiB, 32_MiB, 10));   // pool grows to 32 MiB
  feed(converter, pooled(alloc, 0xb00, 3_MiB, 32_MiB, 20));   // taken from the pool
  feed(converter, pooled(alloc, 0xc00, 40_MiB, 64_MiB, 40));  // the pool grows to 64 MiB
  feed(converter, pooled(release, 0xb00, 3_MiB, 64_MiB, 50));
  feed(converter, pooled(release, 0xc00, 40_MiB, 2_MiB, 60));  // released above the threshold
  const Conversion conversion = converter.finish("test");
  // after each record the pool's allocations plus its reserve are its size
  // the reserve shrinks before an allocation taken from it and grows after: never more than
  // the pool held
  EXPECT_EQ(lines_of(conversion), (std::vector<std::string>{
                                      "alloc gpu:0 1048576 t=10 addr=0xa00 stream=7 tag=pool",
                                      "alloc gpu:0 32505856 t=10 tag=pool-reserve",  // 32 - 1
                                      "free gpu:0 3145728 t=20 tag=pool-reserve",    // 28 MiB
                                      "alloc gpu:0 3145728 t=20 addr=0xb00 stream=7 tag=pool",
                                      "free gpu:0 1048576 t=30 addr=0xa00 stream=7 tag=pool",
                                      "alloc gpu:0 1048576 t=30 tag=pool-reserve",  // 29 MiB
                                      "free gpu:0 8388608 t=40 tag=pool-reserve",   // 64-43=21
                                      "alloc gpu:0 41943040 t=40 addr=0xc00 stream=7 tag=pool",
                                      "free gpu:0 3145728 t=50 addr=0xb00 stream=7 tag=pool",
                                      "alloc gpu:0 3145728 t=50 tag=pool-reserve",  // 24 MiB
                                      "free gpu:0 23068672 t=60 tag=pool-reserve",  // 2 MiB
                                      "free gpu:0 41943040 t=60 addr=0xc00 stream=7 tag=pool",
                                  }));
  // replayed, the device holds the pool's size at its peak and 2 MiB at the end
  const std::string text = traces::format_trace(conversion.header, conversion.events);
  GpuConfig config;
  GpuSpec gpu;
  gpu.id = 0;
  gpu.total_bytes = 80_GiB;
  config.gpus.push_back(gpu);
  auto reader = traces::TraceReader::from_source(traces::memory_source(text, "p.trace"), "p.trace");
  ASSERT_TRUE(reader) << reader.error().to_string();
  auto replayer = traces::Replayer::create(config, traces::ReplayOptions{});
  ASSERT_TRUE(replayer);
  ASSERT_TRUE(replayer->replay(*reader, {}));
  EXPECT_EQ(replayer->summary().high_water.at(Gpu{0}), 64_MiB);
  EXPECT_EQ(replayer->tracker().allocated(Gpu{0}), 2_MiB);
}

TEST(CuptiConvert, AnImportedPoolsSizeFieldIsAProcessIdNotBytes) {
  CuptiConverter converter;
  auto record = pooled(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, 0xa00, 4096, 0, 10);
  record.memoryPoolConfig.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_IMPORTED;
  record.memoryPoolConfig.pool.processId = 424242;  // read as bytes, a reserve of 420146
  feed(converter, record);
  EXPECT_EQ(lines_of(converter.finish("test")),
            (std::vector<std::string>{"alloc gpu:0 4096 t=10 addr=0xa00 stream=7 tag=pool"}));
}

TEST(CuptiConvert, AZeroByteReleaseFreesWhatWasAllocatedThere) {
  CuptiConverter converter;
  feed(converter, free_record(0xa000, 0, 20));  // delivered first, happened after the allocation
  feed(converter, alloc_record(0xa000, 5_MiB, 10));
  feed(converter, free_record(0xf000, 0, 30));  // never seen allocated: its size is unknown
  EXPECT_EQ(lines_of(converter.finish("test")),
            (std::vector<std::string>{"alloc gpu:0 5242880 t=10 addr=0xa000",
                                      "free gpu:0 5242880 t=20 addr=0xa000",
                                      "free gpu:0 t=30 addr=0xf000"}));
}

TEST(CuptiConvert, ATornDownContextFreesWhatItHeldAndTheNextOneGetsABaseline) {
  CuptiConverter converter;
  converter.add_device(device_record(0, 80_GiB, 79_GiB), 1);  // 1 GiB in use: the context
  auto a = alloc_record(0xa000, 2_MiB, 10);
  a.contextId = 1;
  auto b = alloc_record(0xb000, 3_MiB, 11);
  b.contextId = 1;
  auto other = alloc_record(0xc000, 4_MiB, 12);
  other.contextId = 2;  // another context: it stays
  auto freed = free_record(0xa000, 2_MiB, 13);
  freed.contextId = 1;
  for (const auto& record : {a, b, other, freed})
    feed(converter, record);
  auto pooled_alloc =
      pooled(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, 0xd000, 1_MiB, 8_MiB, 14);
  pooled_alloc.contextId = 1;
  feed(converter, pooled_alloc);
  converter.on_context_destroyed(1, 0, 20);  // cudaDeviceReset
  // a new primary context: 1 GiB + 4 MiB in use then, the trace still holds 1 GiB + 4 MiB
  converter.add_device(device_record(0, 80_GiB, 79_GiB - 4_MiB - 512_MiB), 30);
  EXPECT_EQ(lines_of(converter.finish("test")),
            (std::vector<std::string>{
                "baseline gpu:0 1073741824 t=1", "alloc gpu:0 2097152 t=10 addr=0xa000",
                "alloc gpu:0 3145728 t=11 addr=0xb000", "alloc gpu:0 4194304 t=12 addr=0xc000",
                "free gpu:0 2097152 t=13 addr=0xa000",
                "alloc gpu:0 1048576 t=14 addr=0xd000 stream=7 tag=pool",
                "alloc gpu:0 7340032 t=14 tag=pool-reserve",
                "free gpu:0 3145728 t=20 addr=0xb000 tag=teardown",
                "free gpu:0 1048576 t=20 addr=0xd000 tag=teardown",
                "free gpu:0 7340032 t=20 tag=teardown",  // the pool's reserve
                "baseline gpu:0 536870912 t=30",         // what the new context adds
            }));
  EXPECT_EQ(converter.counts().contexts_destroyed, 1U);
}

TEST(CuptiConvert, AReleaseRecordAfterATeardownDoesNotFreeTwice) {
  CuptiConverter converter;
  auto a = alloc_record(0xa000, 2_MiB, 10);
  a.contextId = 1;
  feed(converter, a);
  converter.on_context_destroyed(1, 0, 20);
  feed(converter, free_record(0xa000, 2_MiB, 21));   // CUPTI reports the implicit release too
  feed(converter, alloc_record(0xa000, 1_MiB, 30));  // the address reused by a new context
  feed(converter, free_record(0xa000, 1_MiB, 31));
  EXPECT_EQ(lines_of(converter.finish("test")),
            (std::vector<std::string>{"alloc gpu:0 2097152 t=10 addr=0xa000",
                                      "free gpu:0 2097152 t=20 addr=0xa000 tag=teardown",
                                      "alloc gpu:0 1048576 t=30 addr=0xa000",
                                      "free gpu:0 1048576 t=31 addr=0xa000"}));
}

TEST(CuptiConvert, FewerRecordsThanAllocationCallsMarkTheTraceIncomplete) {
  CuptiConverter converter;
  feed(converter, alloc_record(0xa000, 64, 1));
  feed(converter, free_record(0xa000, 64, 2));
  converter.count_call(true);
  converter.count_call(false);
  EXPECT_FALSE(converter.subscriber_problem().has_value());
  EXPECT_EQ(converter.finish("test").events.size(), 2U);
  // a torch.profiler took the buffers: two more allocations and a free, no records
  converter.count_call(true);
  converter.count_call(true);
  converter.count_call(false);
  const auto problem = converter.subscriber_problem();
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("1 MEMORY2 device allocation records for 3 allocation calls"),
            std::string::npos)
      << *problem;
  EXPECT_NE(problem->find("1 release records for 2 free calls"), std::string::npos) << *problem;
  const Conversion conversion = converter.finish("test");
  ASSERT_EQ(conversion.events.size(), 3U);
  EXPECT_EQ(conversion.events[2].kind, TraceEvent::Kind::Mark);
  EXPECT_EQ(conversion.events[2].text, "incomplete: " + *problem);
  // a checkpoint (records still in flight) does not judge
  EXPECT_EQ(converter.finish("test", false).events.size(), 2U);
  // pinned memory and static memory are not what the counted calls make
  CuptiConverter other;
  feed(other, memory_record(CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION,
                            CUPTI_ACTIVITY_MEMORY_KIND_PINNED, 0, 0x1000, 64, 1));
  other.count_call(true);
  EXPECT_TRUE(other.subscriber_problem().has_value());
}

TEST(CuptiConvert, AnUnknownRecordKindEndsTheBufferLikeItsEnd) {
  CuptiConverter converter;
  Buffer buffer;
  buffer.add(alloc_record(0x1000, 10, 1));
  auto unknown = alloc_record(0x2000, 20, 2);
  unknown.kind = static_cast<CUpti_ActivityKind>(0x7ffffff0);
  buffer.add(unknown);
  auto read = converter.consume_buffer(buffer.data(), buffer.size());
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, 1U);
  EXPECT_EQ(converter.counts().invalid_kind_stops, 1U);
  EXPECT_EQ(converter.finish("test").events.size(), 1U);
}

TEST(CuptiConvert, AForkedChildForgetsItsParentsEventsNotItsDevices) {
  CuptiConverter converter;
  converter.add_device(device_record(0, 80_GiB, 79_GiB), 1);
  feed(converter, alloc_record(0xa000, 64, 2));
  converter.count_call(true);
  converter.forget_events();
  EXPECT_EQ(converter.event_count(), 0U);
  const Conversion conversion = converter.finish("child");
  EXPECT_TRUE(conversion.events.empty());
  EXPECT_EQ(conversion.header.devices.size(), 1U);
  EXPECT_FALSE(converter.subscriber_problem().has_value());
}

}  // namespace
}  // namespace memtrack::recorder
