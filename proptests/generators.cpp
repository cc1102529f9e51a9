#include "generators.hpp"

#include <memtrack/units.hpp>

#include <ostream>
#include <string>

namespace memtrack::proptest {
namespace {

namespace gen = rc::gen;

rc::Gen<std::uint64_t> gen_near_max() {
  return gen::map(gen::inRange<std::uint64_t>(0, 4097),
                  [](std::uint64_t below) { return max_bytes - below; });
}

rc::Gen<std::uint64_t> gen_total() {
  return gen::weightedOneOf<std::uint64_t>({
      {6, gen::inRange<std::uint64_t>(1, 10001)},          // a few bytes
      {6, gen::inRange<std::uint64_t>(256_MiB, 200_GiB)},  // real GPUs
      {1, gen_near_max()},                                 // near 2^64
      {1, gen::inRange<std::uint64_t>(1, max_bytes)},      // anything
      {1, gen::just<std::uint64_t>(0)},                    // rejected
  });
}

// An exact decimal 0.d1..dn in (0, 1] as text, sometimes as a percentage.
rc::Gen<Fraction> gen_decimal_fraction() {
  return gen::mapcat(gen::inRange<int>(1, 7), [](int digits) {
    std::uint64_t scale = 1;
    for (int i = 0; i < digits; ++i)
      scale *= 10;
    return gen::map(gen::inRange<std::uint64_t>(1, scale + 1), [digits, scale](std::uint64_t k) {
      std::string text;
      if (k == scale) {
        text = "1";
      } else {
        const std::string number = std::to_string(k);
        text = "0." + std::string(static_cast<std::size_t>(digits) - number.size(), '0') + number;
      }
      return Fraction::parse(text).value();
    });
  });
}

rc::Gen<Fraction> gen_double_fraction() {
  // From 0.001: smaller doubles need exact denominators beyond 64 bits, which Fraction refuses.
  return gen::map(gen::inRange<std::uint64_t>(1000, 1'000'001), [](std::uint64_t k) {
    return Fraction::from_double(static_cast<double>(k) / 1e6).value();
  });
}

rc::Gen<Fraction> gen_fraction() {
  return gen::weightedOneOf<Fraction>({
      {3, gen_decimal_fraction()},
      {3, gen_double_fraction()},
      {1, gen::just(Fraction{})},
      {1, gen::just(Fraction::parse("0.9").value())},
  });
}

rc::Gen<GpuSpec> gen_gpu(std::uint32_t id) {
  return gen::mapcat(gen_total(), [id](std::uint64_t total) {
    const auto usable = gen::weightedOneOf<std::optional<std::uint64_t>>({
        {3, gen::just(std::optional<std::uint64_t>{})},
        {1, gen::map(gen::inRange<std::uint64_t>(0, total),
                     [](std::uint64_t v) { return std::optional<std::uint64_t>(v); })},
        {1, gen::map(gen::arbitrary<std::uint64_t>(),
                     [](std::uint64_t v) { return std::optional<std::uint64_t>(v); })},
    });
    const auto own_fraction = gen::weightedOneOf<std::optional<Fraction>>({
        {3, gen::just(std::optional<Fraction>{})},
        {1, gen::map(gen_fraction(), [](Fraction f) { return std::optional<Fraction>(f); })},
    });
    return gen::map(gen::pair(usable, own_fraction), [id, total](const auto& parts) {
      return GpuSpec{.id = id,
                     .total_bytes = total,
                     .usable_bytes = parts.first,
                     .memory_fraction = parts.second,
                     .name = "gpu" + std::to_string(id)};
    });
  });
}

rc::Gen<std::vector<std::uint32_t>> gen_ids() {
  return gen::mapcat(gen::inRange<std::size_t>(0, 9), [](std::size_t count) {
    // 2 in 7: consecutive ids; 4 in 7: sparse; 1 in 7 (two or more GPUs): a duplicate.
    const int choices = count >= 2 ? 7 : 6;
    return gen::mapcat(gen::inRange<int>(0, choices), [count](int pick) {
      if (pick < 2) {
        std::vector<std::uint32_t> ids(count);
        for (std::size_t i = 0; i < count; ++i)
          ids[i] = static_cast<std::uint32_t>(i);
        return gen::just(ids);
      }
      if (pick < 6) {
        // Sparse ids such as {0, 3, 7}, some near the top of the range.
        return gen::unique<std::vector<std::uint32_t>>(count,
                                                       gen::weightedOneOf<std::uint32_t>({
                                                           {5, gen::inRange<std::uint32_t>(0, 16)},
                                                           {1, gen::arbitrary<std::uint32_t>()},
                                                       }));
      }
      // A duplicated id: the config must be rejected.
      return gen::map(
          gen::container<std::vector<std::uint32_t>>(count, gen::inRange<std::uint32_t>(0, 4)),
          [](std::vector<std::uint32_t> ids) {
            ids.back() = ids.front();
            return ids;
          });
    });
  });
}

}  // namespace

void showValue(const AbstractOp& op, std::ostream& os) {
  static const char* const op_names[] = {"alloc", "free", "reset_peak()", "reset_peak(d)"};
  os << op_names[static_cast<int>(op.op)] << " device#" << static_cast<int>(op.device) << " size#"
     << static_cast<int>(op.size) << " r=" << op.random;
}

rc::Gen<GpuConfig> gen_config() {
  return gen::mapcat(gen_ids(), [](const std::vector<std::uint32_t>& ids) {
    rc::Gen<std::vector<GpuSpec>> gpus = gen::just(std::vector<GpuSpec>{});
    for (const std::uint32_t id : ids) {
      gpus = gen::map(gen::pair(gpus, gen_gpu(id)), [](const auto& parts) {
        auto list = parts.first;
        list.push_back(parts.second);
        return list;
      });
    }
    const auto cpu_limit = gen::weightedOneOf<std::uint64_t>({
        {3, gen::inRange<std::uint64_t>(0, 10001)},
        {2, gen::just(GpuConfig::default_cpu_memory_limit)},
        {1, gen::inRange<std::uint64_t>(0, 1_TiB)},
        {1, gen_near_max()},
    });
    return gen::map(gen::tuple(gpus, gen_fraction(), cpu_limit), [](const auto& parts) {
      return GpuConfig{.gpus = std::get<0>(parts),
                       .memory_fraction = std::get<1>(parts),
                       .cpu_memory_limit = std::get<2>(parts)};
    });
  });
}

rc::Gen<std::vector<AbstractOp>> gen_operations() {
  const auto op = gen::weightedOneOf<OpChoice>({
      {12, gen::just(OpChoice::Allocate)},
      {8, gen::just(OpChoice::Deallocate)},
      {1, gen::just(OpChoice::ResetPeakAll)},
      {2, gen::just(OpChoice::ResetPeak)},
  });
  const auto size = gen::weightedOneOf<SizeChoice>({
      {2, gen::just(SizeChoice::Zero)},
      {1, gen::just(SizeChoice::One)},
      {3, gen::just(SizeChoice::ExactAvailable)},
      {2, gen::just(SizeChoice::AvailableMinusOne)},
      {3, gen::just(SizeChoice::AvailablePlusOne)},
      {1, gen::just(SizeChoice::Limit)},
      {1, gen::just(SizeChoice::LimitMinusOne)},
      {1, gen::just(SizeChoice::LimitPlusOne)},
      {1, gen::just(SizeChoice::Max)},
      {1, gen::just(SizeChoice::MaxMinusAllocated)},
      {1, gen::just(SizeChoice::WrappingSum)},
      {3, gen::just(SizeChoice::SmallRandom)},
      {1, gen::just(SizeChoice::LargeRandom)},
      {10, gen::just(SizeChoice::ShareOfAvailable)},
      {6, gen::just(SizeChoice::ExactAllocated)},
      {12, gen::just(SizeChoice::ShareOfAllocated)},
      {2, gen::just(SizeChoice::AllocatedPlusOne)},
  });
  const auto one = gen::construct<AbstractOp>(op, gen::arbitrary<std::uint8_t>(), size,
                                              gen::noShrink(gen::arbitrary<std::uint64_t>()));
  return gen::mapcat(gen::inRange<std::size_t>(1, 401), [one](std::size_t count) {
    return gen::container<std::vector<AbstractOp>>(count, one);
  });
}

}  // namespace memtrack::proptest
