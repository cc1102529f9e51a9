#include "table.hpp"

#include <algorithm>

namespace memtrack::cli {

Table::Table(std::vector<std::string> headers) {
  for (std::string& header : headers) {
    const bool right = !header.empty() && header.front() == '>';
    if (right) header.erase(0, 1);
    right_aligned_.push_back(right);
    headers_.push_back(std::move(header));
  }
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = headers_[c].size();
    for (const auto& row : rows_)
      widths[c] = std::max(widths[c], row[c].size());
  }
  const auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string padding(widths[c] - cells[c].size(), ' ');
      line += right_aligned_[c] ? padding + cells[c] : cells[c] + padding;
      if (c + 1 < cells.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out << line << "\n";
  };
  print_row(headers_);
  for (const auto& row : rows_)
    print_row(row);
}

}  // namespace memtrack::cli
