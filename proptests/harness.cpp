#include "harness.hpp"

#include <memtrack/traces/operations.hpp>

#include <charconv>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <string_view>

namespace memtrack::proptest {
namespace {

struct Scale {
  int multiply{1};
  int divide{1};
};

Scale read_scale() {
  const char* text = std::getenv("MEMTRACK_PROPTEST_SCALE");
  if (text == nullptr || *text == '\0') return {};
  const std::string_view view(text);
  Scale scale;
  const auto parse = [](std::string_view part, int& out) {
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc{} && end == part.data() + part.size() && out > 0;
  };
  bool ok = false;
  if (view.starts_with("1/")) {
    ok = parse(view.substr(2), scale.divide);
  } else {
    ok = parse(view, scale.multiply);
  }
  if (!ok) {
    ADD_FAILURE() << "MEMTRACK_PROPTEST_SCALE='" << view
                  << "': expected a positive integer N (N times the cases) or 1/N";
    return {};
  }
  return scale;
}

bool rc_params_sets_max_success() {
  const char* params = std::getenv("RC_PARAMS");
  return params != nullptr &&
         std::string_view(params).find("max_success") != std::string_view::npos;
}

}  // namespace

int scaled_cases(int default_cases) {
  if (rc_params_sets_max_success()) return rc::detail::configuration().testParams.maxSuccess;
  const Scale scale = read_scale();
  return std::max(1, default_cases * scale.multiply / scale.divide);
}

std::filesystem::path regressions_dir() {
  if (const char* dir = std::getenv("MEMTRACK_REGRESSIONS_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return MEMTRACK_SOURCE_REGRESSIONS_DIR;
}

std::filesystem::path save_regression(const std::string& property, const sim::Scenario& scenario) {
  const std::string source = "property-test regression: " + property;
  const std::string text = traces::format_operations(scenario, source);
  std::ostringstream name;
  name << property << "-" << std::hex << std::setw(16) << std::setfill('0')
       << std::hash<std::string>{}(text) << ".trace";
  std::filesystem::create_directories(regressions_dir());
  const auto path = regressions_dir() / name.str();
  if (auto saved = traces::write_operations(path, scenario, source); !saved) {
    ADD_FAILURE() << "could not save the regression: " << saved.error().to_string();
  }
  return path;
}

}  // namespace memtrack::proptest
