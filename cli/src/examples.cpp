#include "examples.hpp"

#include <array>

namespace memtrack::cli {
namespace {

// The files named here are a user's: cli/tests/documented_examples_tests.cpp makes each one from
// the project's own recordings (serving.trace.zst, snapshot.pickle, kineto.json, ...) and runs
// every line in a scratch folder.
constexpr std::array example_table{
    Example{"budget", "memtrack budget --gpu 0:32GiB --fraction 0.9",
            "one 32 GiB GPU at 90 %, and the default 16 GiB CPU: each limit, exactly"},
    Example{"budget",
            "memtrack budget --gpu 0:32GiB,usable=24GiB --gpu 1:24GiB --cpu-limit 64GiB --json",
            "two GPUs, the first capped at 24 GiB usable, as JSON"},
    Example{"profiles", "memtrack profiles", "every device profile, with its CUDA total and limit"},
    Example{"profiles", "memtrack profiles show rtx5090",
            "one profile, every field with where it came from"},
    Example{"sim", "memtrack sim --profile 2xrtx5090 --workload registry --ops 100000",
            "model loading on two RTX 5090s, production tracker against the reference model"},
    Example{"sim",
            "memtrack sim --profile h100-sxm --workload serving --ops 20000 --seed 2 --record "
            "seed2.trace.zst",
            "a serving run, recorded as a trace that replay, fit and report read"},
    Example{"replay", "memtrack replay serving.trace.zst",
            "replay a trace on its own devices, checking its checkpoints byte for byte"},
    Example{"replay", "memtrack replay snapshot.pickle --json",
            "a PyTorch snapshot under the caching allocator model, checked against its segments"},
    Example{"replay", "memtrack replay serving.trace.zst --profile rtx5090 --states states.jsonl",
            "on an RTX 5090's budget, writing the state after every operation"},
    Example{"fit", "memtrack fit snapshot.pickle --profile rtx5090",
            "does it fit on an RTX 5090? what it needs, the headroom or shortfall, the first "
            "refusal"},
    Example{"fit", "memtrack fit snapshot.pickle --profile rtx5090,h100-sxm,l4",
            "on which of these GPUs does it fit?"},
    Example{"fit", "memtrack fit snapshot.pickle --profile rtx5090 --suggest",
            "and under which PYTORCH_CUDA_ALLOC_CONF settings would it need less?"},
    Example{"fit", "memtrack fit serving.trace.zst kineto.json --gpu-budget 0:20GiB --json",
            "two recordings loaded in turn on a GPU with exactly 20 GiB, as JSON for CI"},
    Example{"import", "memtrack import snapshot.pickle -o snapshot.trace.zst",
            "a PyTorch snapshot as a compressed memtrack trace"},
    Example{"import", "memtrack import --from rmm rmm_log.dev0.csv -o rmm.trace",
            "an RMM log (the GPU id from .dev0 in the name)"},
    Example{"record", "memtrack record -o serve.trace.zst -- python serve.py --port 8000",
            "every cudaMalloc and free of a program, as a trace (needs a GPU)"},
    Example{"probe", "memtrack probe -o profiles/",
            "measure each GPU into a profile (needs a GPU)"},
    Example{"probe", "memtrack probe --check rtx5090",
            "where the built-in profile differs from this GPU (needs a GPU)"},
    Example{"report", "memtrack report serving.trace.zst --profile rtx5090 -o report.html",
            "memory over time on an RTX 5090's budget, as one HTML file"},
    Example{"report", "memtrack report after.trace.zst --compare before.trace.zst -o report.html",
            "two recordings side by side"},
    Example{"compare", "memtrack compare before.trace.zst after.trace.zst --sizes 5",
            "what each needs per device, and the five sizes whose counts differ most"},
    Example{"compare", "memtrack compare before.trace.zst after.trace.zst --json",
            "the same as JSON"},
};

}  // namespace

std::span<const Example> examples() {
  return example_table;
}

std::string examples_footer(std::string_view subcommand) {
  std::string footer;
  for (const Example& example : example_table) {
    if (example.subcommand != subcommand) continue;
    if (footer.empty()) footer = "Examples:\n";
    footer += "  ";
    footer += example.line;
    footer += "\n      ";
    footer += example.what;
    footer += "\n";
  }
  if (!footer.empty()) footer += "\n";
  return footer + "Exit codes: 0 success, 1 the check failed, 2 bad input.";
}

}  // namespace memtrack::cli
