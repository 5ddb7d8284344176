// Proves ReadCsv's memory bound: loading a table never holds more than twice
// the bytes of its values (Table::ValueBytes()) on the heap. This binary
// replaces the global operator new/delete to track the live heap bytes and
// their peak, which is why it is a test binary of its own.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "core/filesystem.h"
#include "data/csv.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace {

std::atomic<size_t> g_live_bytes{0};
std::atomic<size_t> g_peak_bytes{0};

void* Track(void* p) {
  if (p == nullptr) return nullptr;
  const size_t live =
      g_live_bytes.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
  size_t peak = g_peak_bytes.load();
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
  }
  return p;
}

void Untrack(void* p) {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(malloc_usable_size(p));
  std::free(p);
}

void* Allocate(size_t n) {
  void* p = Track(std::malloc(n == 0 ? 1 : n));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* AllocateAligned(size_t n, std::align_val_t align) {
  const size_t a = static_cast<size_t>(align);
  void* p = Track(std::aligned_alloc(a, (n + a - 1) / a * a));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t n) { return Allocate(n); }
void* operator new[](size_t n) { return Allocate(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return Track(std::malloc(n == 0 ? 1 : n));
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return Track(std::malloc(n == 0 ? 1 : n));
}
void* operator new(size_t n, std::align_val_t a) {
  return AllocateAligned(n, a);
}
void* operator new[](size_t n, std::align_val_t a) {
  return AllocateAligned(n, a);
}
void operator delete(void* p) noexcept { Untrack(p); }
void operator delete[](void* p) noexcept { Untrack(p); }
void operator delete(void* p, size_t) noexcept { Untrack(p); }
void operator delete[](void* p, size_t) noexcept { Untrack(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Untrack(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Untrack(p); }
void operator delete(void* p, std::align_val_t) noexcept { Untrack(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Untrack(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { Untrack(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  Untrack(p);
}

namespace slipway {
namespace {

constexpr int kRows = 200000;

// Writes a CSV of kRows rows and 8 columns: three floats, two ints, two
// categorical strings and a 0/1 label, with missing cells in four of them.
void WriteTrainingCsv(const std::string& path) {
  auto file = LocalFilesystem()->OpenWritable(path);
  ASSERT_TRUE(file.ok()) << file.status();
  static const char* const kCities[] = {"paris",  "oslo",   "rome",  "lisbon",
                                        "vienna", "prague", "dublin"};
  uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  std::string block = "income,tenure,balance,age,visits,city,plan,churned\n";
  char cell[64];
  for (int row = 0; row < kRows; ++row) {
    std::snprintf(cell, sizeof(cell), "%.6f,", (next() % 1000000) / 7.0);
    block += cell;
    if (row % 11 != 0) {
      std::snprintf(cell, sizeof(cell), "%.3f", (next() % 10000) / 100.0);
      block += cell;
    }
    block += ',';
    std::snprintf(cell, sizeof(cell), "%.2e,", (next() % 100000) * 1.5);
    block += cell;
    block += row % 13 == 0 ? "NA" : std::to_string(18 + next() % 70);
    block += ',' + std::to_string(next() % 500) + ',';
    block += row % 17 == 0 ? "" : kCities[next() % 7];
    block += ",plan-" + std::to_string(next() % 40) + ',';
    block += row % 19 == 0 ? "" : std::to_string(next() % 2);
    block += '\n';
    if (block.size() > (1 << 16)) {
      ASSERT_TRUE((*file)->Append(block).ok());
      block.clear();
    }
  }
  ASSERT_TRUE((*file)->Append(block).ok());
  ASSERT_TRUE((*file)->Close().ok());
}

TEST(CsvMemoryTest, PeakHeapIsAtMostTwiceTheValues) {
  TempDir dir;
  const std::string path = JoinPath(dir.path(), "train.csv");
  WriteTrainingCsv(path);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  const size_t baseline = g_live_bytes.load();
  g_peak_bytes.store(baseline);
  absl::StatusOr<CsvData> data = ReadCsv(LocalFilesystem(), path);
  const size_t peak_growth = g_peak_bytes.load() - baseline;

  ASSERT_TRUE(data.ok()) << data.status();
  const Table& table = data->table;
  ASSERT_EQ(data->rows, kRows);
  ASSERT_EQ(table.num_columns(), 8u);
  EXPECT_EQ(table.column(0).type(), DataType::kFloat64);
  EXPECT_EQ(table.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(table.column(3).type(), DataType::kInt64);
  EXPECT_EQ(table.column(5).type(), DataType::kString);
  EXPECT_EQ(table.column(6).dictionary().size(), 40u);
  EXPECT_EQ(table.column(7).type(), DataType::kInt64);
  EXPECT_GT(table.column(1).missing_count(), 0u);
  EXPECT_GT(table.column(5).missing_count(), 0u);

  const size_t values = table.ValueBytes();
  std::printf(
      "file bytes %llu, value bytes %zu, peak heap growth %zu (%.2fx)\n",
      static_cast<unsigned long long>(*LocalFilesystem()->FileSize(path)),
      values, peak_growth,
      static_cast<double>(peak_growth) / static_cast<double>(values));
  EXPECT_LE(peak_growth, 2 * values);
}

}  // namespace
}  // namespace slipway
