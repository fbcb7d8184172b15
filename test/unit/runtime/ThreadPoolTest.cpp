//===- test/unit/runtime/ThreadPoolTest.cpp - Static parallel loops -------===//
//
// The partition, the caller running chunk 0, nesting, many tiny calls
// (with the measured per-call latency printed), the C entry point, the
// region profile.
//
//===----------------------------------------------------------------------===//
#include "runtime/ThreadPool.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace gradc::rt;

namespace {

TEST(ThreadPool, PartitionIsContiguousAndBalanced) {
  for (int64_t n : {1, 2, 3, 7, 8, 100, 1001}) {
    for (int threads : {1, 2, 3, 4, 16}) {
      int chunks = ThreadPool::chunkCount(n, threads);
      EXPECT_EQ(chunks, std::min<int64_t>(n, threads));
      int64_t next = 0;
      for (int i = 0; i < chunks; ++i) {
        ChunkRange range = ThreadPool::chunk(n, chunks, i);
        EXPECT_EQ(range.begin, next) << "n " << n << " chunk " << i;
        // The first n % chunks chunks have one more element.
        EXPECT_EQ(range.end - range.begin, n / chunks + (i < n % chunks ? 1 : 0));
        next = range.end;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_EQ(ThreadPool::chunkCount(0, 4), 0);
  // The boundaries are a function of (n, chunks) alone: pinned.
  EXPECT_EQ(ThreadPool::chunk(10, 4, 0).end, 3);
  EXPECT_EQ(ThreadPool::chunk(10, 4, 1).end, 6);
  EXPECT_EQ(ThreadPool::chunk(10, 4, 2).end, 8);
  EXPECT_EQ(ThreadPool::chunk(10, 4, 3).end, 10);
}

TEST(ThreadPool, RunsTheStaticChunksAndTheCallerRunsChunkZero) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t n : {1, 2, 5, 1000}) {
      std::mutex mutex;
      std::map<int64_t, std::pair<int64_t, std::thread::id>> ranges; // begin -> (end, thread)
      std::vector<std::atomic<int>> visits(n);
      pool.parallelFor(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          visits[i].fetch_add(1);
        std::lock_guard<std::mutex> lock(mutex);
        ranges[begin] = {end, std::this_thread::get_id()};
      });
      int chunks = ThreadPool::chunkCount(n, threads);
      ASSERT_EQ(static_cast<int>(ranges.size()), chunks) << "threads " << threads << " n " << n;
      for (int i = 0; i < chunks; ++i) {
        ChunkRange expected = ThreadPool::chunk(n, chunks, i);
        ASSERT_EQ(ranges.count(expected.begin), 1u);
        EXPECT_EQ(ranges[expected.begin].first, expected.end);
      }
      EXPECT_EQ(ranges[0].second, std::this_thread::get_id());
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(visits[i].load(), 1);
    }
  }
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  std::atomic<int> nestedCalls{0};
  pool.parallelFor(8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // From inside a body: one serial call over the whole range.
      pool.parallelFor(100, [&](int64_t b, int64_t e) {
        EXPECT_EQ(b, 0);
        EXPECT_EQ(e, 100);
        EXPECT_TRUE(ThreadPool::insideParallelRegion());
        nestedCalls.fetch_add(1);
        total.fetch_add(e - b);
      });
    }
  });
  EXPECT_EQ(nestedCalls.load(), 8);
  EXPECT_EQ(total.load(), 800);
  EXPECT_FALSE(ThreadPool::insideParallelRegion());
}

struct CountClosure {
  std::atomic<int64_t> *sum;
};

void addRange(void *closure, int64_t begin, int64_t end) {
  static_cast<CountClosure *>(closure)->sum->fetch_add(end - begin, std::memory_order_relaxed);
}

TEST(ThreadPool, CEntryPoint) {
  std::atomic<int64_t> sum{0};
  CountClosure closure{&sum};
  // NULL pool: one call on the caller.
  gradc_parallel_for(nullptr, 10, addRange, &closure);
  EXPECT_EQ(sum.load(), 10);
  ThreadPool pool(3);
  gradc_parallel_for(&pool, 1000, addRange, &closure);
  EXPECT_EQ(sum.load(), 1010);
  gradc_parallel_for(&pool, 0, addRange, &closure);
  gradc_parallel_for(&pool, -5, addRange, &closure);
  EXPECT_EQ(sum.load(), 1010);
}

void sleepRange(void *, int64_t begin, int64_t end) {
  std::this_thread::sleep_for(std::chrono::microseconds(200 * (end - begin)));
}

/// The "gradc region:" lines a pool printed when destroyed.
std::vector<std::string> profileLines(const std::string &stderrText) {
  std::vector<std::string> lines;
  size_t at = 0;
  for (size_t next; (next = stderrText.find('\n', at)) != std::string::npos; at = next + 1)
    if (stderrText.compare(at, 13, "gradc region:") == 0)
      lines.push_back(stderrText.substr(at, next - at));
  return lines;
}

/// The value of `key`=... in a profile line, as a number.
long long field(const std::string &line, const std::string &key) {
  size_t at = line.find(" " + key + "=");
  EXPECT_NE(at, std::string::npos) << key << " in " << line;
  return at == std::string::npos ? -1 : std::stoll(line.substr(at + key.size() + 2), nullptr, 0);
}

TEST(ThreadPool, RegionProfileSumsEachBodysCallsAndTimes) {
  std::atomic<int64_t> sum{0};
  CountClosure closure{&sum};
  ::setenv("GRADC_REGION_PROFILE", "1", 1);
  testing::internal::CaptureStderr();
  {
    ThreadPool pool(2);
    for (int i = 0; i < 3; ++i)
      gradc_parallel_for(&pool, 1000, addRange, &closure);
    // One chunk (n = 1): run by the caller alone, no wait.
    for (int i = 0; i < 2; ++i)
      gradc_parallel_for(&pool, 1, sleepRange, nullptr);
  }
  std::vector<std::string> lines = profileLines(testing::internal::GetCapturedStderr());
  ::unsetenv("GRADC_REGION_PROFILE");
  EXPECT_EQ(sum.load(), 3000);
  ASSERT_EQ(lines.size(), 2u);
  // In the order of the first call, each naming its body and
  // gradc_parallel_for as the anchor.
  char expected[64];
  std::snprintf(expected, sizeof expected, "body=%p ", reinterpret_cast<void *>(&addRange));
  EXPECT_NE(lines[0].find(expected), std::string::npos) << lines[0];
  std::snprintf(expected, sizeof expected, "anchor=%p ",
                reinterpret_cast<void *>(&gradc_parallel_for));
  EXPECT_NE(lines[0].find(expected), std::string::npos) << lines[0];
  EXPECT_EQ(field(lines[0], "calls"), 3);
  EXPECT_EQ(field(lines[1], "calls"), 2);
  EXPECT_EQ(field(lines[0], "gap_ns") >= 0, true);
  // Two serial calls of at least 200 us each, and no waiting in them.
  EXPECT_GE(field(lines[1], "own_ns"), 400000);
  EXPECT_EQ(field(lines[1], "wait_ns"), 0);

  // Without the variable, nothing is printed.
  testing::internal::CaptureStderr();
  {
    ThreadPool pool(2);
    gradc_parallel_for(&pool, 1000, addRange, &closure);
  }
  EXPECT_TRUE(profileLines(testing::internal::GetCapturedStderr()).empty());
}

TEST(ThreadPool, PerChunkReductionIsReproducible) {
  // A kernel that sums per chunk and then adds the partial sums in chunk
  // order gets the same bits every time on the same thread count.
  const int64_t n = 100003;
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i)
    values[i] = 1.0f / float(i + 1);
  ThreadPool pool(3);
  auto reduce = [&] {
    int chunks = ThreadPool::chunkCount(n, pool.threads());
    std::vector<float> partial(chunks);
    pool.parallelFor(n, [&](int64_t begin, int64_t end) {
      float sum = 0;
      for (int64_t i = begin; i < end; ++i)
        sum += values[i];
      for (int c = 0; c < chunks; ++c)
        if (ThreadPool::chunk(n, chunks, c).begin == begin)
          partial[c] = sum;
    });
    float total = 0;
    for (float p : partial)
      total += p;
    return total;
  };
  float first = reduce();
  for (int run = 0; run < 20; ++run)
    EXPECT_EQ(reduce(), first);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallelFor(3,
                                [](int64_t begin, int64_t) {
                                  if (begin == 2)
                                    throw std::runtime_error("chunk 2");
                                }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallelFor(30, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  EXPECT_EQ(sum.load(), 30);
}

TEST(ThreadPool, CallsFromSeveralThreadsAreSerialised) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  const int kCallsPerThread = 2000;
  auto hammer = [&] {
    for (int i = 0; i < kCallsPerThread; ++i)
      pool.parallelFor(7, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  };
  std::thread a(hammer), b(hammer);
  a.join();
  b.join();
  EXPECT_EQ(sum.load(), 2 * kCallsPerThread * 7);
}

/// A counter alone on its cache line, so counting does not add traffic
/// between cores to what we measure.
struct alignas(64) PaddedCounter {
  int64_t value = 0;
};

/// Mean wall time per parallelFor(threads) whose body only counts, in ns.
double measureCallLatency(ThreadPool &pool, int calls, std::chrono::microseconds pause) {
  std::vector<PaddedCounter> perChunk(pool.threads());
  auto body = [&](int64_t begin, int64_t end) { perChunk[begin].value += end - begin; };
  pool.parallelFor(pool.threads(), body); // warm up
  std::chrono::nanoseconds busy{0};
  for (int i = 0; i < calls; ++i) {
    if (pause.count() > 0)
      std::this_thread::sleep_for(pause);
    auto start = std::chrono::steady_clock::now();
    pool.parallelFor(pool.threads(), body);
    busy += std::chrono::steady_clock::now() - start;
  }
  for (const PaddedCounter &counter : perChunk)
    EXPECT_EQ(counter.value, calls + 1);
  return double(busy.count()) / calls;
}

TEST(ThreadPool, ManyTinyCallsAndTheirLatency) {
  const int threads = std::max(2u, std::min(4u, std::thread::hardware_concurrency()));
  const int kBackToBackCalls = 20000, kSleepingCalls = 200;
  ThreadPool spinning(threads);
  double hot = measureCallLatency(spinning, kBackToBackCalls, std::chrono::microseconds(0));
  // After a 1 ms pause the workers have gone to sleep: a futex wake-up.
  double cold = measureCallLatency(spinning, kSleepingCalls, std::chrono::microseconds(1000));
  ThreadPool sleeping(threads, std::chrono::nanoseconds(0));
  double noSpin = measureCallLatency(sleeping, kBackToBackCalls / 10, std::chrono::microseconds(0));
  std::printf("[ latency  ] parallelFor, %d threads, trivial body: %.0f ns back to back "
              "(spinning workers), %.0f ns after 1 ms idle (sleeping workers), %.0f ns back to "
              "back with spinning disabled\n",
              threads, hot, cold, noSpin);
  // The figures are printed, not asserted: timing belongs in bench/, and a
  // loaded CI machine would make any bound flaky.  What is asserted is that
  // every one of the many calls ran every chunk (in measureCallLatency).
}

} // namespace
