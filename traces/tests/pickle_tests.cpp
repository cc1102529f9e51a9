// The restricted pickle reader: plain data in, anything that builds objects or runs code refused.
#include "pickle.hpp"
#include "pickle_writer.hpp"

#include <gtest/gtest.h>

namespace memtrack::traces {
namespace {

using testing::pickle_of;
using testing::Py;
using testing::PyDict;
using testing::PyList;

TEST(Pickle, ReadsNestedPlainData) {
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{PyDict{{"device", 0}, {"address", std::int64_t{140000000000000}}}}},
      {"n", -5},
      {"big", std::int64_t{-1234567890123}},
      {"f", 0.5},
      {"t", true},
      {"none", Py()}});
  auto doc = pickle::parse(bytes, "p");
  ASSERT_TRUE(doc) << doc.error().to_string();
  const pickle::Value& root = *doc->root;
  ASSERT_TRUE(root.is(pickle::Value::Kind::Dict));
  EXPECT_EQ(root.get("n")->as_signed(), -5);
  EXPECT_EQ(root.get("big")->as_signed(), -1234567890123);
  EXPECT_EQ(root.get("f")->number, 0.5);
  EXPECT_TRUE(root.get("t")->boolean);
  EXPECT_TRUE(root.get("none")->is(pickle::Value::Kind::None));
  const pickle::Value* segment = root.get("segments")->items.at(0);
  EXPECT_EQ(segment->get("address")->as_unsigned(), 140000000000000U);
  EXPECT_EQ(root.get("missing"), nullptr);
}

// The values of a document too large for one chunk of the store: each stays where it was made
// while more are added, and each reads back as written.
TEST(Pickle, ValuesStayInPlaceAcrossChunks) {
  PyList items;
  for (int i = 0; i < 2500; ++i)
    items.emplace_back(i * 3);
  auto doc = pickle::parse(pickle_of(Py(items)), "p");
  ASSERT_TRUE(doc) << doc.error().to_string();
  EXPECT_EQ(doc->values.size(), 2501U);  // the list and its items
  ASSERT_EQ(doc->root->items.size(), 2500U);
  for (std::size_t i = 0; i < 2500; ++i)
    ASSERT_EQ(doc->root->items[i]->as_unsigned(), i * 3) << i;
}

TEST(Pickle, MemoReferencesShareTheValue) {
  // [ "x" (memoized as 1), BINGET 1 ] -> two references to the same string.
  const std::string bytes = std::string(
      "\x80\x04]\x94(\x8c\x01x\x94h\x01"
      "e.",
      13);
  auto doc = pickle::parse(bytes, "p");
  ASSERT_TRUE(doc) << doc.error().to_string();
  ASSERT_EQ(doc->root->items.size(), 2U);
  EXPECT_EQ(doc->root->items[0], doc->root->items[1]);
  EXPECT_EQ(doc->root->items[1]->text, "x");
}

// The memo as Python's dict: indexes given out of order (BINPUT), MEMOIZE at the memo's size,
// an index set again, and one never set refused.
TEST(Pickle, TheMemoKeepsEveryIndexAsPythonDoes) {
  const auto text = [](char c) { return std::string("\x8c\x01") + c; };
  const auto put = [](int index) { return std::string("q") + static_cast<char>(index); };
  const auto get = [](int index) { return std::string("h") + static_cast<char>(index); };
  const std::string memoize = "\x94";
  const std::string bytes = std::string("\x80\x04]") + "(" +     //
                            text('a') + put(5) +                 // {5: a}
                            text('b') + memoize +                // {5: a, 1: b}
                            text('c') + put(0) +                 // {0: c, ...}
                            text('d') + memoize +                // {3: d, ...}: the memo had 3
                            get(5) + get(1) + get(0) + get(3) +  //
                            text('e') + put(0) +                 // 0 again: e
                            text('f') + put(1) +                 // 1 again: f
                            text('g') + memoize +  // {4: g}: still 4 entries before it
                            get(0) + get(1) + get(4) + "e.";
  auto doc = pickle::parse(bytes, "p");
  ASSERT_TRUE(doc) << doc.error().to_string();
  std::string read;
  for (const pickle::Value* item : doc->root->items)
    read += item->text;
  EXPECT_EQ(read, "abcdabcdefgefg");
  // Set at 0 and 2: 1 was never set.
  const std::string gap = std::string("\x80\x04N") + put(0) + "N" + put(2) + "0" + get(1) + ".";
  auto refused = pickle::parse(gap, "p");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("memo index 1 was never set"), std::string::npos)
      << refused.error().to_string();
}

TEST(Pickle, LongIntegersAreSignExtended) {
  // LONG1 with 2 bytes 0xff 0xff is -1; 9 bytes 0x01... (about 2^64 * 1.004) is beyond 64 bits,
  // kept as such for the consumer to refuse by name.
  auto minus_one = pickle::parse(std::string("\x80\x04\x8a\x02\xff\xff.", 7), "p");
  ASSERT_TRUE(minus_one);
  EXPECT_TRUE(minus_one->root->negative);
  EXPECT_EQ(minus_one->root->magnitude, 1U);
  EXPECT_EQ(minus_one->root->as_signed(), -1);
  EXPECT_EQ(minus_one->root->as_unsigned(), std::nullopt);
  auto huge = pickle::parse(std::string("\x80\x04\x8a\x09") + std::string(9, '\x01') + ".", "p");
  ASSERT_TRUE(huge) << huge.error().to_string();
  EXPECT_TRUE(huge->root->wide);
  EXPECT_EQ(huge->root->as_unsigned(), std::nullopt);
  EXPECT_EQ(huge->root->describe(), "an integer of 2^64 or more");
}

TEST(Pickle, RefusesCodeAndObjects) {
  // cos\nsystem\n  (GLOBAL), then REDUCE: the classic pickle exploit.
  const std::string exploit =
      "\x80\x02"
      "cos\nsystem\n"
      "(\x8c\x02id\x85R.";
  auto doc = pickle::parse(exploit, "evil.pickle");
  ASSERT_FALSE(doc);
  EXPECT_NE(doc.error().to_string().find("evil.pickle: byte 2: opcode 0x63 imports a name"),
            std::string::npos)
      << doc.error().to_string();
  for (const char op : {'\x93', 'R', 'b', 'i', 'o', '\x81', '\x92', 'Q'}) {
    auto refused = pickle::parse(std::string("\x80\x04") + op + ".", "p");
    ASSERT_FALSE(refused) << static_cast<int>(op);
    EXPECT_NE(refused.error().to_string().find("refused"), std::string::npos);
  }
}

TEST(Pickle, CorruptionIsLocated) {
  const std::string good = pickle_of(PyDict{{"key", "value"}});
  // Truncated: no STOP.
  auto cut = pickle::parse(good.substr(0, good.size() - 3), "p");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().to_string().find("truncated"), std::string::npos);
  // A string length far beyond the data: refused without allocating it.
  const std::string huge = std::string("\x80\x04X\xff\xff\xff\x7f", 7) + "abc.";
  auto long_string = pickle::parse(huge, "p");
  ASSERT_FALSE(long_string);
  EXPECT_NE(long_string.error().to_string().find("p: byte 2: truncated: needs 2147483647"),
            std::string::npos)
      << long_string.error().to_string();
  // A number cut short: its opcode's place, what it needs and what is left.
  auto short_int = pickle::parse(std::string("\x80\x04J\x01\x02\x03", 6), "p");
  ASSERT_FALSE(short_int);
  EXPECT_NE(short_int.error().to_string().find("p: byte 2: truncated: needs 4 more bytes, 3 left"),
            std::string::npos)
      << short_int.error().to_string();
  // Unknown opcode, stack underflow, a memo never set, two values at STOP.
  for (const std::string& bad : {std::string("\x80\x04\xff.", 4), std::string("\x80\x04s.", 4),
                                 std::string("\x80\x04h\x05.", 5), std::string("\x80\x04NN.", 5),
                                 std::string("\x80\x09N.", 4), std::string("\x80\x04N\x61.", 5)}) {
    auto doc = pickle::parse(bad, "p");
    EXPECT_FALSE(doc);
    if (!doc) {
      EXPECT_NE(doc.error().to_string().find("p: byte "), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace memtrack::traces
