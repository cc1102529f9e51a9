// A plain-text table with aligned columns, for human output of every subcommand.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace memtrack::cli {

class Table {
 public:
  /// Column headers; a header starting with '>' is right-aligned (the '>' is not printed).
  explicit Table(std::vector<std::string> headers);

  void add_row(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_aligned_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace memtrack::cli
