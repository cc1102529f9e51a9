// memtrack compare A B [--json] [--sizes N]: two recordings side by side per device.
#include "app.hpp"
#include "commands.hpp"
#include "compare.hpp"
#include "options.hpp"
#include "table.hpp"
#include "trace_support.hpp"

#include <memtrack/units.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

namespace memtrack::cli {
namespace compare {
namespace {

/// How often one recording allocated one size on one device.
struct SizeTally {
  std::uint64_t count{0};
  std::optional<std::uint64_t> first_stack;  ///< the first allocation's `stack=`, if any
  std::optional<FrameText> frame;            ///< that stack's innermost frame
};

/// What one recording's replay gives.
struct Measured {
  RecordingInfo info;
  std::vector<std::uint32_t> gpus;  ///< the GPUs it uses, ascending
  std::map<DevicePlacement, DeviceFigures> figures;
  std::map<DevicePlacement, std::map<std::uint64_t, SizeTally>> sizes;
};

/// A replay that departed from the recording's own truth: the figures after it mean nothing.
Error departed(const std::string& file, const traces::ReplayFailure& failure) {
  return Error::parse_error(file + ": the replay departed from the recording at " +
                            failure.at.to_string() + ": " + failure.what +
                            " (memtrack replay shows both states)");
}

/// Names each size's first allocation by the innermost user frame of its stack, else its innermost
/// frame (the reader has read the whole frame table by now); recordings without frames keep none.
void name_frames(const traces::FrameTable& table, Measured& measured) {
  if (table.empty()) return;
  for (auto& [device, sizes] : measured.sizes) {
    for (auto& [bytes, tally] : sizes) {
      if (!tally.first_stack) continue;
      std::vector<traces::Frame> stack;
      for (const traces::Frame* frame : table.stack(*tally.first_stack))
        stack.push_back(*frame);
      if (stack.empty()) continue;
      // the user's own code, as `fit` names a refusal; else the innermost frame
      const traces::Frame& named = stack[user_frame(stack).value_or(0)];
      tally.frame = FrameText{named.file, named.line, named.name};
    }
  }
}

/// Replays one recording on its own budgets (none, measuring only, when it declares none).
Result<Measured> measure(const std::string& file) {
  auto trace = open_trace(file);
  if (!trace) return trace.error();
  auto budgets = choose_budgets(*trace, "", std::nullopt);
  if (!budgets) return budgets.error();
  auto gpu_map = gpu_map_for(*trace, *budgets);
  if (!gpu_map) return gpu_map.error();
  traces::ReplayOptions replay_options;
  replay_options.lockstep = false;  // the figures; `memtrack replay` checks them against the model
  replay_options.recorded_budgets = budgets->recorded;
  auto replayer = traces::Replayer::create(budgets->config, replay_options);
  if (!replayer) return replayer.error();

  Measured measured;
  auto replayed = replayer->replay(trace->reader, *gpu_map, [&](const traces::ReplayStep& step) {
    if (step.trace_event->kind != traces::TraceEvent::Kind::Allocate || !step.outcome.ok) return;
    const DevicePlacement where = step.outcome.resolved.value_or(step.operation.device);
    SizeTally& tally = measured.sizes[where][step.operation.bytes];
    if (tally.count++ == 0) tally.first_stack = step.trace_event->stack;
    ++measured.figures[where].allocations;
  });
  if (!replayed) return replayed.error();
  const traces::ReplaySummary& summary = replayer->summary();
  if (summary.failure) return departed(file, *summary.failure);

  // "no budget: measuring only" without choose_budgets' hint (compare takes no --profile)
  const std::string budget_text = budgets->description.substr(0, budgets->description.find(" ("));
  measured.info = {file, trace->reader.header().source, budget_text, summary.events,
                   summary.inconsistencies};
  std::set<std::uint32_t> gpus = trace->used_gpus;
  for (const DeviceFit& fit : fit_summary(*replayer)) {
    DeviceFigures& figures = measured.figures[fit.device];
    figures.device = fit.device;
    figures.needed = fit.needed;
    figures.peak = fit.peak;
    figures.final_bytes = replayer->tracker().allocated(fit.device);
    // a GPU reached only through `auto` placement is used too
    if (fit.device.is_gpu() && (figures.peak != 0 || figures.allocations != 0)) {
      gpus.insert(fit.device.gpu_id());
    }
  }
  measured.gpus.assign(gpus.begin(), gpus.end());
  name_frames(trace->reader.frames(), measured);
  return measured;
}

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  return checked_mul(a, b).value_or(max_bytes);
}

/// The sizes whose counts differ on `a` (in A) and `b` (in B), largest byte difference first.
void compare_sizes(const Measured& first, std::optional<DevicePlacement> a, const Measured& second,
                   std::optional<DevicePlacement> b, std::size_t max_sizes, DeviceComparison& out) {
  static const std::map<std::uint64_t, SizeTally> none;
  const auto sizes_of =
      [](const Measured& m,
         std::optional<DevicePlacement> d) -> const std::map<std::uint64_t, SizeTally>& {
    if (!d) return none;
    const auto found = m.sizes.find(*d);
    return found == m.sizes.end() ? none : found->second;
  };
  const auto& in_a = sizes_of(first, a);
  const auto& in_b = sizes_of(second, b);
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> counts;
  for (const auto& [bytes, tally] : in_a)
    counts[bytes].first = tally.count;
  for (const auto& [bytes, tally] : in_b)
    counts[bytes].second = tally.count;
  std::vector<SizeDifference> differing;
  for (const auto& [bytes, pair] : counts) {
    const auto [count_a, count_b] = pair;
    if (count_a == count_b) continue;
    const std::uint64_t apart = count_a > count_b ? count_a - count_b : count_b - count_a;
    // named where the recording that has more of it first made one
    const auto& more = count_b > count_a ? in_b : in_a;
    const auto found = more.find(bytes);
    differing.push_back({bytes, count_a, count_b, saturating_mul(apart, bytes),
                         found == more.end() ? std::nullopt : found->second.frame});
  }
  std::sort(
      differing.begin(), differing.end(), [](const SizeDifference& x, const SizeDifference& y) {
        return x.difference_bytes != y.difference_bytes ? x.difference_bytes > y.difference_bytes
                                                        : x.bytes > y.bytes;
      });
  out.sizes_differing = differing.size();
  if (differing.size() > max_sizes) differing.resize(max_sizes);
  out.sizes = std::move(differing);
}

std::optional<DeviceFigures> figures_of(const Measured& m, std::optional<DevicePlacement> d) {
  if (!d) return std::nullopt;
  const auto found = m.figures.find(*d);
  if (found == m.figures.end()) return DeviceFigures{*d, 0, 0, 0, 0};
  return found->second;
}

std::string figure_cell(const std::optional<DeviceFigures>& figures,
                        std::uint64_t DeviceFigures::*field) {
  return figures ? std::to_string((*figures).*field) : std::string("-");
}

}  // namespace

std::string FrameText::to_string() const {
  return file + ":" + std::to_string(line) + " in " + name;
}

std::string DeviceComparison::label() const {
  const std::string in_a = a ? a->device.to_string() : "-";
  const std::string in_b = b ? b->device.to_string() : "-";
  return in_a == in_b ? in_a : in_a + "/" + in_b;
}

std::string signed_difference(std::uint64_t a, std::uint64_t b) {
  if (a == b) return "0";
  return b > a ? "+" + std::to_string(b - a) : "-" + std::to_string(a - b);
}

Result<Comparison> compare_recordings(const CompareOptions& options) {
  auto first = measure(options.file_a);
  if (!first) return first.error();
  auto second = measure(options.file_b);
  if (!second) return second.error();
  Comparison comparison;
  comparison.a = first->info;
  comparison.b = second->info;
  // The GPUs each uses, ascending, onto each other (as `fit` maps a recording onto a node).
  const std::size_t pairs = std::max(first->gpus.size(), second->gpus.size());
  for (std::size_t i = 0; i < pairs; ++i) {
    std::optional<DevicePlacement> a;
    std::optional<DevicePlacement> b;
    if (i < first->gpus.size()) a = Gpu{first->gpus[i]};
    if (i < second->gpus.size()) b = Gpu{second->gpus[i]};
    DeviceComparison device{figures_of(*first, a), figures_of(*second, b), {}, 0};
    compare_sizes(*first, a, *second, b, options.max_sizes, device);
    if (a && b && *a != *b) {
      comparison.pairing.push_back("A " + a->to_string() + " with B " + b->to_string());
    }
    comparison.devices.push_back(std::move(device));
  }
  DeviceComparison cpu{figures_of(*first, Cpu{}), figures_of(*second, Cpu{}), {}, 0};
  compare_sizes(*first, Cpu{}, *second, Cpu{}, options.max_sizes, cpu);
  comparison.devices.push_back(std::move(cpu));
  return comparison;
}

void print_comparison(std::ostream& out, const Comparison& c) {
  out << "memtrack compare: A = " << c.a.file << " (" << c.a.events << " events, " << c.a.budgets
      << ")\n";
  out << "                  B = " << c.b.file << " (" << c.b.events << " events, " << c.b.budgets
      << ")\n";
  if (c.pairing.empty()) {
    out << "GPUs paired in ascending order of the ids each recording uses: the same ids\n";
  } else {
    out << "GPUs paired in ascending order of the ids each recording uses: ";
    for (std::size_t i = 0; i < c.pairing.size(); ++i)
      out << (i == 0 ? "" : ", ") << c.pairing[i];
    out << "\n";
  }
  for (const auto& [name, info] : {std::pair{"A", &c.a}, std::pair{"B", &c.b}}) {
    if (info->inconsistencies != 0) {
      out << name << " is inconsistent: " << info->inconsistencies
          << " frees not applied (memtrack replay names them)\n";
    }
  }
  out << "\n";
  Table table({"device", ">needed A", ">needed B", ">needed B-A", ">needed B-A GiB", ">peak A",
               ">peak B", ">final A", ">final B"});
  for (const DeviceComparison& d : c.devices) {
    const std::uint64_t needed_a = d.a ? d.a->needed : 0;
    const std::uint64_t needed_b = d.b ? d.b->needed : 0;
    const std::uint64_t apart = needed_a > needed_b ? needed_a - needed_b : needed_b - needed_a;
    const std::string gib = format_gib(apart);
    const std::string sign = gib == "0.00" ? "" : needed_b > needed_a ? "+" : "-";
    table.add_row({d.label(), figure_cell(d.a, &DeviceFigures::needed),
                   figure_cell(d.b, &DeviceFigures::needed), signed_difference(needed_a, needed_b),
                   sign + gib, figure_cell(d.a, &DeviceFigures::peak),
                   figure_cell(d.b, &DeviceFigures::peak),
                   figure_cell(d.a, &DeviceFigures::final_bytes),
                   figure_cell(d.b, &DeviceFigures::final_bytes)});
  }
  table.print(out);
  out << "(bytes; needed: the peak had nothing been refused; final: allocated at the end)\n";
  for (const DeviceComparison& d : c.devices) {
    out << "\n" << d.label() << ": ";
    if (d.sizes_differing == 0) {
      out << "every allocation size made as often in A as in B\n";
      continue;
    }
    out << d.sizes_differing << " allocation size" << (d.sizes_differing == 1 ? "" : "s")
        << " made a different number of times (largest difference in bytes first)\n";
    if (d.sizes.empty()) continue;
    const bool frames = std::any_of(d.sizes.begin(), d.sizes.end(),
                                    [](const SizeDifference& s) { return s.frame.has_value(); });
    std::vector<std::string> headers = {">size bytes", ">count A", ">count B", ">bytes B-A"};
    if (frames) headers.emplace_back("first allocated at");
    Table sizes(headers);
    for (const SizeDifference& s : d.sizes) {
      std::vector<std::string> row = {std::to_string(s.bytes), std::to_string(s.count_a),
                                      std::to_string(s.count_b),
                                      (s.grew() ? "+" : "-") + std::to_string(s.difference_bytes)};
      if (frames) row.push_back(s.frame ? s.frame->to_string() : "-");
      sizes.add_row(std::move(row));
    }
    sizes.print(out);
    if (d.sizes_differing > d.sizes.size()) {
      out << "and " << d.sizes_differing - d.sizes.size() << " more\n";
    }
  }
}

nlohmann::ordered_json comparison_json(const Comparison& c) {
  const auto recording = [](const RecordingInfo& info) {
    return nlohmann::ordered_json{{"file", info.file},
                                  {"source", info.source},
                                  {"budgets", info.budgets},
                                  {"events", info.events},
                                  {"inconsistencies", info.inconsistencies}};
  };
  const auto figures = [](const std::optional<DeviceFigures>& f) {
    if (!f) return nlohmann::ordered_json(nullptr);
    return nlohmann::ordered_json{{"device", f->device.to_string()},
                                  {"needed_bytes", f->needed},
                                  {"peak_bytes", f->peak},
                                  {"final_bytes", f->final_bytes},
                                  {"allocations", f->allocations}};
  };
  nlohmann::ordered_json json;
  json["a"] = recording(c.a);
  json["b"] = recording(c.b);
  json["gpu_pairing"] = "the GPUs each recording uses, in ascending order, paired";
  json["gpu_pairs_renamed"] = c.pairing;
  json["devices"] = nlohmann::ordered_json::array();
  for (const DeviceComparison& d : c.devices) {
    nlohmann::ordered_json device{{"device", d.label()}, {"a", figures(d.a)}, {"b", figures(d.b)}};
    device["sizes_differing"] = d.sizes_differing;
    device["sizes"] = nlohmann::ordered_json::array();
    for (const SizeDifference& s : d.sizes) {
      nlohmann::ordered_json frame = nullptr;
      if (s.frame) {
        frame = {{"file", s.frame->file}, {"line", s.frame->line}, {"name", s.frame->name}};
      }
      device["sizes"].push_back({{"bytes", s.bytes},
                                 {"count_a", s.count_a},
                                 {"count_b", s.count_b},
                                 {"difference_bytes", s.difference_bytes},
                                 {"grew", s.grew()},
                                 {"frame", frame}});
    }
    device["sizes_left_off"] = d.sizes_differing - d.sizes.size();
    json["devices"].push_back(std::move(device));
  }
  return json;
}

}  // namespace compare

namespace {

struct CompareCommandOptions {
  compare::CompareOptions compare;
  bool json{false};
};

Outcome run_compare(const CompareCommandOptions& options, std::ostream& out,
                    std::ostream& /*err*/) {
  auto comparison = compare::compare_recordings(options.compare);
  if (!comparison) return comparison.error();
  if (options.json) {
    out << compare::comparison_json(*comparison)
               .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
        << "\n";
  } else {
    compare::print_comparison(out, *comparison);
  }
  return exit_ok;
}

}  // namespace

void add_compare_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<CompareCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "compare",
      "Compare two recordings per device: what each needs (its peak had nothing been refused), "
      "its peak and what is allocated at its end, and the allocation sizes made a different "
      "number of times (largest difference in bytes first). Each is replayed on its own "
      "budgets; the GPUs each uses are paired in ascending order (A's gpu:1 with B's gpu:0 "
      "when each uses one), the CPU with the CPU. Exit 0 compared, 2 bad input.");
  command
      ->add_option("a", options->compare.file_a,
                   "The first recording (a memtrack trace or anything `memtrack import` reads)")
      ->required();
  command->add_option("b", options->compare.file_b, "The second recording")->required();
  command
      ->add_option("--sizes", options->compare.max_sizes,
                   "How many differing allocation sizes to list per device (default 20)")
      ->check(whole_number());
  add_json_flag(*command, options->json);
  run_when_chosen(*command, chosen, options, run_compare);
}

}  // namespace memtrack::cli
