#include "summary_json.hpp"

#include <memtrack/units.hpp>

namespace memtrack::cli {

nlohmann::ordered_json number_or_null(bool given, std::uint64_t value) {
  return given ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
}

nlohmann::ordered_json device_usage_json(const DevicePlacement& device,
                                         nlohmann::ordered_json budget, std::uint64_t peak,
                                         std::uint64_t final_bytes) {
  return {{"device", device.to_string()},
          {"budget_bytes", std::move(budget)},
          {"peak_bytes", peak},
          {"final_bytes", final_bytes}};
}

/// A share as a JSON number with two decimals (exact integer arithmetic, then parsed).
nlohmann::ordered_json percent_number(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return nullptr;
  return nlohmann::ordered_json::parse(format_percent(part, whole));
}

nlohmann::ordered_json modelled_json(const traces::ModelledDevice& m) {
  return {{"capacity_bytes", m.capacity},
          {"context_bytes", m.context_bytes},
          {"allocated_peak_bytes", m.allocated_peak},
          {"reserved_peak_bytes", m.reserved_peak},
          {"reserved_needed_bytes", m.reserved_needed},
          {"fragmentation_at_reserved_peak_bytes", m.reserved_peak - m.allocated_at_reserved_peak},
          {"largest_free_block_at_reserved_peak_bytes", m.largest_free_at_reserved_peak},
          {"reserved_final_bytes", m.reserved_final},
          {"allocated_final_bytes", m.allocated_final},
          {"refused", m.refused},
          {"recorded_reserved_peak_bytes", m.recorded_reserved_peak},
          {"verified",
           {{"addresses", m.addresses_verified},
            {"segment_events", m.segment_events_verified},
            {"layout_segments", m.layout_segments_verified},
            {"layout_blocks", m.layout_blocks_verified},
            {"reserved_checkpoints", m.reserved_checks_verified}}},
          {"undetermined",
           {{"start_blocks", m.start_blocks_undetermined},
            {"reserved_checkpoints", m.reserved_checks_undetermined},
            {"layouts_skipped", m.layouts_skipped}}}};
}

nlohmann::ordered_json frames_json(const std::vector<traces::Frame>& frames) {
  auto json = nlohmann::ordered_json::array();
  for (const traces::Frame& frame : frames)
    json.push_back({{"file", frame.file}, {"line", frame.line}, {"name", frame.name}});
  return json;
}

nlohmann::ordered_json model_oom_json(const std::optional<traces::ModelOutOfMemory>& oom) {
  if (!oom) return nullptr;
  const sim::allocators::OutOfMemory& f = oom->figures;
  return {{"trace", oom->at.trace},
          {"event", oom->at.event},
          {"line", oom->at.line},
          {"origin", oom->at.origin},
          {"event_text", oom->event_text},
          {"device", "gpu:" + std::to_string(oom->gpu)},
          {"requested_bytes", f.requested},
          {"reserved_bytes", f.reserved},
          {"allocated_bytes", f.allocated},
          {"free_bytes", f.device_free},
          {"total_bytes", f.device_total},
          {"message", oom->message()},
          {"frames", frames_json(oom->frames)}};
}

nlohmann::ordered_json recorded_oom_json(const traces::ReplaySummary& s) {
  if (!s.first_recorded_oom) return nullptr;
  const traces::RecordedOutOfMemory& oom = *s.first_recorded_oom;
  return {{"count", s.recorded_ooms},
          {"trace", oom.at.trace},
          {"event", oom.at.event},
          {"origin", oom.at.origin},
          {"device", oom.device.to_string()},
          {"requested_bytes", oom.requested},
          {"device_free_bytes", oom.device_free},
          {"reserved_bytes",
           oom.reserved ? nlohmann::ordered_json(*oom.reserved) : nlohmann::ordered_json(nullptr)},
          {"reproduced", oom.reproduced ? nlohmann::ordered_json(*oom.reproduced)
                                        : nlohmann::ordered_json(nullptr)}};
}

nlohmann::ordered_json inconsistency_json(const std::optional<traces::Inconsistency>& first) {
  if (!first) return nullptr;
  return {{"trace", first->at.trace},   {"event", first->at.event},        {"line", first->at.line},
          {"origin", first->at.origin}, {"event_text", first->event_text}, {"what", first->what}};
}

nlohmann::ordered_json refusal_json(const std::optional<traces::Refusal>& first) {
  if (!first) return nullptr;
  const traces::Refusal& r = *first;
  return {{"trace", r.at.trace},
          {"event", r.at.event},
          {"line", r.at.line},
          {"origin", r.at.origin},
          {"bytes", r.bytes},
          {"device", r.device.to_string()},
          {"available_bytes", r.available},
          {"frames", frames_json(r.frames)}};
}

void add_oom_json(nlohmann::ordered_json& json, const traces::ReplaySummary& s) {
  json["first_oom"] = model_oom_json(s.first_model_oom);
  json["recorded_oom"] = recorded_oom_json(s);
}

void add_consistency_json(nlohmann::ordered_json& json, const traces::ReplaySummary& s,
                          bool allow_inconsistent) {
  json["inconsistencies"] = s.inconsistencies;
  json["first_inconsistency"] = inconsistency_json(s.first_inconsistency);
  json["allow_inconsistent"] = allow_inconsistent;
  json["unlanded"] = s.unlanded;
  json["first_unlanded"] = inconsistency_json(s.first_unlanded);
}

}  // namespace memtrack::cli
