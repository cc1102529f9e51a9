// The fuzzing entry points, one per parser: libFuzzer targets call them, and a unit test replays
// the seed corpus and every saved crash through them. Each must return normally for any input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace memtrack::traces::fuzz {

/// Canonical trace reader, then a replay of what it read.
void canonical(const std::uint8_t* data, std::size_t size);
/// PyTorch snapshot importer (and the pickle reader under it).
void pytorch(const std::uint8_t* data, std::size_t size);
/// Kineto JSON importer.
void kineto(const std::uint8_t* data, std::size_t size);
/// RMM CSV importer.
void rmm(const std::uint8_t* data, std::size_t size);
/// Nsight SQLite importer.
void nsight(const std::uint8_t* data, std::size_t size);

/// @return the entry point named `canonical`, `pytorch`, `kineto`, `rmm` or `nsight`, or null
using Entry = void (*)(const std::uint8_t*, std::size_t);
Entry entry(std::string_view name);

}  // namespace memtrack::traces::fuzz
