#include "common/student/model/few_rows_linear.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "ATen/Parallel.h"
#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "torch/autograd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DISTILL_FEW_ROWS_AVX512 1
#include <immintrin.h>
#endif

namespace distill::student {
namespace {

#ifdef DISTILL_FEW_ROWS_AVX512

// Helper threads that run the parts of one product beside the caller, kept for the life of the process
// (as a BLAS keeps its own): starting threads per product would cost more than a small product. A helper
// spins for kSpin after each product, because a decoding step calls the next product within microseconds,
// then sleeps until woken.
class HelperPool {
 public:
  // Runs fn(part) for every part in [0, parts), part 0 on the calling thread, and returns when all are
  // done. Runs them all on the calling thread when another caller holds the helpers.
  void Run(int parts, absl::FunctionRef<void(int)> fn) {
    std::unique_lock<std::mutex> run_lock(run_mu_, std::try_to_lock);
    if (parts <= 1 || !run_lock.owns_lock()) {
      for (int part = 0; part < parts; ++part) fn(part);
      return;
    }
    while (static_cast<int>(helpers_.size()) < parts - 1) {
      // Started before this product's generation, which the new helper must not take for seen.
      helpers_.emplace_back([this, index = static_cast<int>(helpers_.size()),
                             seen = generation_.load(std::memory_order_relaxed)] { HelperLoop(index, seen); });
    }
    fn_ = &fn;
    parts_ = parts;
    acks_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mu_);
      wake_.notify_all();
    }
    fn(0);
    // Every helper acknowledges every generation, taking part or not, so none can still be reading fn_ or
    // parts_ when the next Run overwrites them.
    const int helpers = static_cast<int>(helpers_.size());
    while (acks_.load(std::memory_order_acquire) < helpers) Pause();
  }

 private:
  static constexpr std::chrono::microseconds kSpin{200};

  static void Pause() { _mm_pause(); }

  void HelperLoop(int index, uint64_t seen) {
    while (true) {
      seen = WaitForGeneration(seen);
      if (index + 1 < parts_) (*fn_)(index + 1);
      acks_.fetch_add(1, std::memory_order_release);
    }
  }

  // Returns the generation once it differs from `seen`: spinning for kSpin, then asleep. The spin does not
  // yield the core: measured with libtorch's OpenMP threads on the same cores (which spin too), yielding
  // made decoding 3x slower (a waiting caller's helper then ran only when the scheduler came back to it).
  uint64_t WaitForGeneration(uint64_t seen) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
      const uint64_t now = generation_.load(std::memory_order_acquire);
      if (now != seen) return now;
      Pause();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > deadline) break;
    }
    std::unique_lock<std::mutex> lock(sleep_mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    uint64_t now;
    while ((now = generation_.load(std::memory_order_seq_cst)) == seen) wake_.wait(lock);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return now;
  }

  std::mutex run_mu_;  // held by the caller whose product the helpers run
  std::vector<std::thread> helpers_ ABSL_GUARDED_BY(run_mu_);
  // The current product, written by its caller before it bumps generation_ and read by helpers after.
  const absl::FunctionRef<void(int)>* fn_ = nullptr;
  int parts_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> acks_{0};  // helpers done with the current generation
  // Helpers that stopped spinning; a caller takes sleep_mu_ and notifies only when there are any.
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mu_;
  std::condition_variable wake_;
};

// The process's pool. Never destroyed (its threads run until exit); a child process made by fork() has no
// helper threads, so it starts a pool of its own.
std::atomic<HelperPool*> pool{nullptr};

HelperPool& Pool() {
  HelperPool* p = pool.load(std::memory_order_acquire);
  if (p != nullptr) return *p;
  static std::once_flag at_fork;
  std::call_once(at_fork, [] {
    pthread_atfork(nullptr, nullptr, [] { pool.store(nullptr, std::memory_order_relaxed); });
  });
  auto* fresh = new HelperPool();
  if (pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *p;
}

#define DISTILL_AVX512 __attribute__((target("avx512f")))

// GCC 12 reports its own AVX-512 intrinsics' deliberately undefined source operands (_mm512_undefined_ps)
// as uninitialized once inlined (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

// Lanes 0..3: the sums of all lanes of a, b, c and d.
DISTILL_AVX512 inline __m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // Add 128-bit blocks pairwise until block i holds four partial sums of the i-th vector ...
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  __m512 sums = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  // ... then within each block, until every lane of block i holds the i-th total; gather lanes 0, 4, 8, 12.
  sums = _mm512_add_ps(sums, _mm512_permute_ps(sums, 0x4E));
  sums = _mm512_add_ps(sums, _mm512_permute_ps(sums, 0xB1));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), sums));
}

// y[i, j] = x[i, :] · w[j, :] for i < MR, j < NR: MR·NR accumulators of 16 lanes, each x and w vector
// loaded once per 16 columns. The last partial vector of a row is a masked load, which touches no memory
// past the row's end.
template <int MR, int NR>
DISTILL_AVX512 void Tile(const float* x, const float* w, int64_t k_size, float* y, int64_t y_stride) {
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  auto step = [&](int64_t k, __mmask16 mask) DISTILL_AVX512 {
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_ps(mask, w + j * k_size + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k_size + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  };
  int64_t k = 0;
  for (; k + 16 <= k_size; k += 16) step(k, 0xFFFF);
  if (k < k_size) step(k, static_cast<__mmask16>((1u << (k_size - k)) - 1));
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    if constexpr (NR == 4) {
      _mm_storeu_ps(y + i * y_stride, Sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
    } else {
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) y[i * y_stride + j] = _mm512_reduce_add_ps(acc[i][j]);
    }
  }
}

using TileFn = void (*)(const float*, const float*, int64_t, float*, int64_t);

template <int MR>
constexpr TileFn kTileRow[4] = {Tile<MR, 1>, Tile<MR, 2>, Tile<MR, 3>, Tile<MR, 4>};
constexpr const TileFn* kTiles[4] = {kTileRow<1>, kTileRow<2>, kTileRow<3>, kTileRow<4>};

// Rows [n_begin, n_end) of w against all m rows of x. Four rows of w at a time, so each is read from
// memory once and from cache by the other row blocks of x.
void ProductRows(const float* x, int64_t m, const float* w, int64_t k_size, int64_t n_begin, int64_t n_end,
                 float* y, int64_t n_size) {
  for (int64_t n = n_begin; n < n_end; n += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, n_end - n));
    for (int64_t i = 0; i < m; i += 4) {
      const int mr = static_cast<int>(std::min<int64_t>(4, m - i));
      kTiles[mr - 1][nr - 1](x + i * k_size, w + n * k_size, k_size, y + i * n_size + n, n_size);
    }
  }
}

#pragma GCC diagnostic pop

bool HasAvx512() {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
}

// A part smaller than this many weight bytes is not worth waking a helper for (a few µs of work).
constexpr int64_t kMinPartBytes = 96 * 1024;

#endif  // DISTILL_FEW_ROWS_AVX512

}  // namespace

namespace {
std::atomic<int> few_rows_threads{0};
}  // namespace

int FewRowsLinearThreads() {
  const int configured = few_rows_threads.load(std::memory_order_relaxed);
  return std::max(1, configured > 0 ? configured : at::get_num_threads());
}

void SetFewRowsLinearThreads(int threads) { few_rows_threads.store(std::max(0, threads)); }

int ConfigureDecodingThreads(int threads) {
  const int helpers = threads > 0 ? threads : std::max(1, at::get_num_threads());
  SetFewRowsLinearThreads(helpers);
  at::set_num_threads(1);
  return helpers;
}

std::optional<torch::Tensor> FewRowsLinear(const torch::Tensor& x, const torch::Tensor& w) {
#ifdef DISTILL_FEW_ROWS_AVX512
  if (!HasAvx512() || x.dim() < 1 || w.dim() != 2 || !x.device().is_cpu() || !w.device().is_cpu() ||
      x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32 || !w.is_contiguous()) {
    return std::nullopt;
  }
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return std::nullopt;
  const int64_t k_size = w.size(1);
  const int64_t n_size = w.size(0);
  if (x.size(-1) != k_size || k_size == 0) return std::nullopt;  // let matmul name the mismatch
  const int64_t m = x.numel() / k_size;
  if (m == 0 || m > kFewRowsMaxRows) return std::nullopt;

  const torch::Tensor rows = x.reshape({m, k_size}).contiguous();
  torch::Tensor y = torch::empty({m, n_size}, x.options());
  const float* x_data = rows.data_ptr<float>();
  const float* w_data = w.data_ptr<float>();
  float* y_data = y.data_ptr<float>();

  // Parts of whole 4-row blocks of w, one per thread, none smaller than kMinPartBytes.
  const int64_t blocks = (n_size + 3) / 4;
  const int64_t by_size = std::max<int64_t>(1, n_size * k_size * 4 / kMinPartBytes);
  const int parts = static_cast<int>(std::min<int64_t>({FewRowsLinearThreads(), by_size, blocks}));
  Pool().Run(parts, [&](int part) {
    const int64_t n_begin = std::min(n_size, blocks * part / parts * 4);
    const int64_t n_end = std::min(n_size, blocks * (part + 1) / parts * 4);
    ProductRows(x_data, m, w_data, k_size, n_begin, n_end, y_data, n_size);
  });
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = n_size;
  return y.view(shape);
#else
  (void)x;
  (void)w;
  return std::nullopt;
#endif
}

}  // namespace distill::student
