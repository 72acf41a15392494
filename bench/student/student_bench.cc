// Student-model throughput: the libtorch T5 (common/student/model) against Hugging Face transformers'
// T5ForConditionalGeneration (what users would otherwise run; the baseline every ratio and target is
// against) and, as a second column, a plain-PyTorch T5 written for this benchmark. Both Python models are
// t5_reference.py (--impl transformers, --impl reference), run as child processes under the project's
// virtualenv python, whose torch wheel carries the libtorch this binary links; all three run in the same
// session with the same weights and the same thread count.
//
//   distill-bench-student [--quick] [--shapes tiny,small] [--threads N] [--wait_idle 120]
//                         [--out results.json]
//
// For each shape (tiny: TinyT5Config, small: SmallT5Config = google/t5-v1_1-small):
//   train     AdamW steps (forward, cross entropy, backward, step; dropout on) on batch 8 x source 64 x
//             target 32 random ids; tokens/s counts source + target tokens;
//   generate  greedy tokens/s at batch 1 and 16, source 64, exactly --gen_tokens new tokens per sequence
//             (EOS never stops a sequence), the best of --gen_reps runs: C++ Generate (KV cache) against
//             transformers' generate() with its KV cache, and against the plain-PyTorch T5 with and
//             without a cache;
//   parity    all three load the same model.safetensors; each Python model reports the max |logits
//             difference| on a padded batch and its greedy tokens, which must equal the C++ ones.
// Each ratio against transformers has a floor, which decides pass or fail, and an aim printed beside it.
// Shared machines are noisy, so the sides alternate for --rounds rounds and every figure is the best
// round's; with --wait_idle each measurement waits for other processes to go quiet and is repeated when
// they were not.
// Model FLOP utilisation (MFU) is model FLOPs / s over the sgemm peak measured here (torch::mm on
// 2048 x 2048 float32, best of 5). Model FLOPs are an exact count of the matmuls the model needs
// (projections, attention scores and context, lm_head; no embeddings, norms or activations), with a
// training step counted as 3x the forward pass (backward = 2x forward) and generation counted with a KV
// cache (the uncached baseline's recomputation is not useful work).
// Threads: the wheel's libtorch has one intra-op pool (OpenMP), which MKL's matrix products run on too,
// so one count sizes everything: --threads, by default the count this process has. The Python children
// get the same count (torch.set_num_threads, OMP_NUM_THREADS). Both sides flush denormals to zero. The C++
// side runs the trainer worker's process setup and optimizer (ConfigureTrainingProcess, FusedAdamW).

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ATen/Context.h"
#include "ATen/Parallel.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/support/bench_support.h"
#include "c10/util/Exception.h"
#include "common/cli/flags.h"
#include "common/status/macros.h"
#include "common/student/checkpoint/hf_config.h"
#include "common/student/checkpoint/safetensors.h"
#include "common/student/model/few_rows_linear.h"
#include "common/student/model/generation.h"
#include "common/student/model/t5.h"
#include "common/student/model/t5_weights.h"
#include "common/student/optim/fused_adamw.h"
#include "common/student/runtime/training_process.h"
#include "nlohmann/json.hpp"
#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "torch/utils.h"

namespace distill::student {
namespace {

using json = nlohmann::json;
using bench::SecondsSince;
using bench::SteadyClock;
using bench::WaitForIdle;

struct Options {
  std::vector<std::string> shapes = {"tiny", "small"};
  int threads = 0;  // torch intra-op (OpenMP) threads; 0: libtorch's default in this process
  int batch = 8;
  int src_len = 64;
  int tgt_len = 32;
  double lr = 1e-4;
  int train_warmup = 2;
  int train_steps = 0;  // 0: per shape (tiny 100, small 10)
  std::vector<std::string> gen_batches = {"1", "16"};
  int gen_tokens = 32;
  int gen_reps = 3;
  int sgemm_n = 2048;
  std::string python = DISTILL_VENV_PYTHON;
  std::string script = DISTILL_BENCH_STUDENT_DIR "/t5_reference.py";
  std::string work_dir = "/tmp/distill-bench-student";
  std::string out;
  bool skip_python = false;
  double wait_idle = 0;  // seconds to wait at most for a quiet machine before each measurement
  int retries = 3;       // with wait_idle: measurements repeated at most this often when disturbed
  int rounds = 3;        // alternating C++/Python rounds; each measurement keeps its best round
};

// ---------------------------------------------------------------------------------------------------
// Other load on the machine. The numbers mean little when something else competes for the cores (with
// 2 threads on 2 cores, one busy neighbour halves throughput and stalls OpenMP barriers), so every
// segment records how much CPU the rest of the machine used meanwhile, and --wait_idle waits for quiet.

// ---------------------------------------------------------------------------------------------------
// Model FLOPs (multiply-adds count 2).

struct Dims {
  double d, inner, ff, vocab, ff_mats, enc_layers, dec_layers;
  explicit Dims(const T5Config& c)
      : d(c.d_model),
        inner(double{1} * c.num_heads * c.d_kv),
        ff(c.d_ff),
        vocab(c.vocab_size),
        ff_mats(c.feed_forward_proj == "gated-gelu" ? 3 : 2),
        enc_layers(c.num_layers),
        dec_layers(c.num_decoder_layers) {}
};

// Encoder over `src` tokens, one sequence.
double EncoderFlops(const Dims& m, double src) {
  const double per_token = 2 * (4 * m.d * m.inner + m.ff_mats * m.d * m.ff);
  return m.enc_layers * (src * per_token + 2 * 2 * src * src * m.inner);
}

// One forward pass (encoder + decoder + lm_head) of one sequence pair.
double ForwardFlops(const Dims& m, double src, double tgt) {
  const double self_attention = tgt * 2 * 4 * m.d * m.inner      // q, k, v, o
                                + 2 * 2 * tgt * tgt * m.inner;   // scores, context
  const double cross_attention = tgt * 2 * 2 * m.d * m.inner     // q, o
                                 + src * 2 * 2 * m.d * m.inner   // k, v
                                 + 2 * 2 * tgt * src * m.inner;  // scores, context
  const double feed_forward = tgt * 2 * m.ff_mats * m.d * m.ff;
  return EncoderFlops(m, src) + m.dec_layers * (self_attention + cross_attention + feed_forward) +
         tgt * 2 * m.d * m.vocab;
}

double TrainStepFlops(const T5Config& c, double batch, double src, double tgt) {
  return 3 * batch * ForwardFlops(Dims(c), src, tgt);
}

// Greedy generation with a KV cache: the encoder, the cross-attention keys and values once, then one
// decoder position per new token attending to every position so far.
double GenerationFlops(const T5Config& c, double batch, double src, int new_tokens) {
  const Dims m(c);
  double flops = EncoderFlops(m, src) + m.dec_layers * src * 2 * 2 * m.d * m.inner;
  for (int t = 0; t < new_tokens; ++t) {
    const double keys = t + 1;
    const double layer = 2 * 4 * m.d * m.inner + 2 * 2 * keys * m.inner   // self-attention
                         + 2 * 2 * m.d * m.inner + 2 * 2 * src * m.inner  // cross q, o, scores
                         + 2 * m.ff_mats * m.d * m.ff;
    flops += m.dec_layers * layer + 2 * m.d * m.vocab;
  }
  return batch * flops;
}

// ---------------------------------------------------------------------------------------------------
// Measurements.

double MeasureSgemmGflops(int64_t n, int reps) {
  torch::Tensor a = torch::randn({n, n});
  torch::Tensor b = torch::randn({n, n});
  torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto start = SteadyClock::now();
    torch::mm(a, b);
    best = std::min(best, SecondsSince(start));
  }
  return 2.0 * static_cast<double>(n * n * n) / best / 1e9;
}

torch::Tensor RandomIds(const T5Config& c, std::vector<int64_t> shape) {
  return torch::randint(2, c.vocab_size, shape, torch::kInt64);
}

json MeasureTraining(T5Model& model, const Options& o, int steps) {
  const T5Config& c = model.config();
  torch::manual_seed(1);
  torch::Tensor ids = RandomIds(c, {o.batch, o.src_len});
  torch::Tensor mask = torch::ones_like(ids);
  torch::Tensor labels = RandomIds(c, {o.batch, o.tgt_len});
  torch::Tensor decoder_ids = torch::cat(
      {torch::full({o.batch, 1}, c.decoder_start_token_id, torch::kInt64), labels.slice(1, 0, o.tgt_len - 1)},
      1);
  // The trainer's optimizer (services/trainer/training/trainer.cc), with its defaults otherwise.
  FusedAdamW optimizer(model.parameters(), torch::optim::AdamWOptions(o.lr));
  model.train();
  double forward = 0, backward = 0, step_time = 0;
  std::vector<double> times;
  torch::Tensor loss;
  double cpu_start = 0;
  for (int step = 0; step < o.train_warmup + steps; ++step) {
    if (step == o.train_warmup) cpu_start = bench::ProcessCpuSeconds();
    const auto t0 = SteadyClock::now();
    optimizer.ZeroGrad();
    loss = T5Model::Loss(model.Forward(ids, mask, decoder_ids), labels);
    const auto t1 = SteadyClock::now();
    loss.backward();
    const auto t2 = SteadyClock::now();
    optimizer.step();
    const auto t3 = SteadyClock::now();
    if (step >= o.train_warmup) {
      times.push_back(std::chrono::duration<double>(t3 - t0).count());
      forward += std::chrono::duration<double>(t1 - t0).count();
      backward += std::chrono::duration<double>(t2 - t1).count();
      step_time += std::chrono::duration<double>(t3 - t2).count();
    }
  }
  const double cpu_seconds = bench::ProcessCpuSeconds() - cpu_start;
  double total = 0;
  for (double t : times) total += t;
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double tokens = double{1} * o.batch * (o.src_len + o.tgt_len) * static_cast<double>(times.size());
  return {{"steps", times.size()},
          {"seconds", total},
          {"cpu_seconds", cpu_seconds},
          {"tokens_per_second", tokens / total},
          {"step_seconds_median", sorted[sorted.size() / 2]},
          {"final_loss", loss.item<double>()},
          {"phase_seconds", {{"forward", forward}, {"backward", backward}, {"optimizer", step_time}}},
          {"optimizer", "AdamW"},
          {"lr", o.lr}};
}

absl::StatusOr<json> MeasureGeneration(T5Model& model, const Options& o, int batch) {
  // What the inference server runs: libtorch's pool at 1 thread, FewRowsLinear's helpers at o.threads.
  ConfigureDecodingThreads(o.threads);
  struct RestoreThreads {
    int threads;
    ~RestoreThreads() {
      at::set_num_threads(threads);
      SetFewRowsLinearThreads(0);
    }
  } restore{o.threads};
  const T5Config& c = model.config();
  torch::manual_seed(2);
  torch::Tensor ids = RandomIds(c, {batch, o.src_len});
  torch::Tensor mask = torch::ones_like(ids);
  model.eval();
  GenerationOptions options;
  options.max_new_tokens = o.gen_tokens;
  options.eos_id = -1;  // no token stops a sequence: every row generates exactly gen_tokens
  options.decoder_start_id = c.decoder_start_token_id;
  GenerationOptions warmup = options;
  warmup.max_new_tokens = std::min(4, o.gen_tokens);
  RETURN_IF_ERROR(Generate(model, ids, mask, warmup).status());
  double best = 1e30;
  for (int rep = 0; rep < o.gen_reps; ++rep) {
    const auto start = SteadyClock::now();
    ASSIGN_OR_RETURN(std::vector<std::vector<int>> out, Generate(model, ids, mask, options));
    best = std::min(best, SecondsSince(start));
    for (const auto& row : out) {
      if (static_cast<int>(row.size()) != o.gen_tokens) {
        return absl::InternalError(
            absl::StrCat("generated ", row.size(), " tokens in a row, expected ", o.gen_tokens));
      }
    }
  }
  return json{{"batch", batch},
              {"new_tokens", o.gen_tokens},
              {"kv_cache", true},
              {"seconds", best},
              {"tokens_per_second", double{1} * batch * o.gen_tokens / best}};
}

// ---------------------------------------------------------------------------------------------------
// Parity inputs for the Python side.

Tensor ToFileTensor(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  Tensor out;
  out.dtype = c.scalar_type() == torch::kInt64 ? DType::kI64 : DType::kF32;
  out.shape = c.sizes().vec();
  out.bytes.assign(static_cast<const char*>(c.data_ptr()), c.nbytes());
  return out;
}

// A keep-mask [rows, length] whose row i has lengths[i] leading ones, and ids with pad (0) after them.
std::pair<torch::Tensor, torch::Tensor> PaddedBatch(const T5Config& c, const std::vector<int64_t>& lengths,
                                                    int64_t length) {
  const int64_t rows = static_cast<int64_t>(lengths.size());
  torch::Tensor mask = torch::zeros({rows, length}, torch::kInt64);
  for (int64_t i = 0; i < rows; ++i) mask[i].slice(0, 0, lengths[i]).fill_(1);
  torch::Tensor ids = RandomIds(c, {rows, length}) * mask;
  return {ids, mask};
}

// Writes parity.safetensors (a padded batch with this model's eval-mode logits, and generation inputs)
// and returns this side's greedy tokens for those inputs.
absl::StatusOr<std::vector<std::vector<int>>> WriteParity(T5Model& model, const Options& o,
                                                          const std::string& path) {
  const T5Config& c = model.config();
  torch::manual_seed(3);
  model.eval();
  auto [ids, mask] = PaddedBatch(c, {16, 13, 10, 7}, 16);
  torch::Tensor decoder_ids =
      torch::cat({torch::full({4, 1}, c.decoder_start_token_id, torch::kInt64), RandomIds(c, {4, 7})}, 1);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.Forward(ids, mask, decoder_ids);
  }
  auto [gen_ids, gen_mask] = PaddedBatch(c, {12, 9, 5}, 12);
  GenerationOptions options;
  options.max_new_tokens = o.gen_tokens;
  options.eos_id = -1;
  options.decoder_start_id = c.decoder_start_token_id;
  ASSIGN_OR_RETURN(std::vector<std::vector<int>> tokens, Generate(model, gen_ids, gen_mask, options));

  SafetensorsFile file;
  file.tensors["input_ids"] = ToFileTensor(ids);
  file.tensors["attention_mask"] = ToFileTensor(mask);
  file.tensors["decoder_input_ids"] = ToFileTensor(decoder_ids);
  file.tensors["logits"] = ToFileTensor(logits);
  file.tensors["gen_input_ids"] = ToFileTensor(gen_ids);
  file.tensors["gen_attention_mask"] = ToFileTensor(gen_mask);
  file.tensors["gen_new_tokens"] = ToFileTensor(torch::full({1}, o.gen_tokens, torch::kInt64));
  RETURN_IF_ERROR(WriteSafetensors(path, file));
  return tokens;
}

// ---------------------------------------------------------------------------------------------------
// The Python baseline.

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The Python baselines, as t5_reference.py's --impl names them. Ratios and targets are against the first.
constexpr const char* kTransformers = "transformers";
constexpr const char* kReference = "reference";
constexpr const char* kPythonImpls[] = {kTransformers, kReference};

// What one run of a Python baseline measures.
struct PythonJob {
  std::string impl;         // kTransformers or kReference
  bool parity = false;      // the parity checks against dir/parity.safetensors
  std::string gen_batches;  // comma-separated generation batch sizes; empty: none
  bool uncached = false;    // generation without a KV cache as well
  int train_steps = 0;      // timed training steps; 0: no training
  bool sgemm = false;       // the sgemm rate as torch.mm sees it from Python
};

absl::StatusOr<json> RunPython(const Options& o, const std::string& dir, const PythonJob& job) {
  // Run() has replaced a zero in o.threads by this process's actual count.
  const std::string threads = std::to_string(o.threads);
  setenv("OMP_NUM_THREADS", threads.c_str(), 1);
  std::vector<std::string> args = {o.python,         o.script,
                                   "--impl",         job.impl,
                                   "--config",       dir + "/config.json",
                                   "--weights",      dir + "/model.safetensors",
                                   "--threads",      threads,
                                   "--batch",        std::to_string(o.batch),
                                   "--src-len",      std::to_string(o.src_len),
                                   "--tgt-len",      std::to_string(o.tgt_len),
                                   "--lr",           absl::StrCat(o.lr),
                                   "--train-warmup", std::to_string(o.train_warmup),
                                   "--train-steps",  std::to_string(job.train_steps),
                                   "--gen-batches",  job.gen_batches,
                                   "--gen-tokens",   std::to_string(o.gen_tokens),
                                   "--gen-reps",     std::to_string(o.gen_reps),
                                   "--sgemm-n",      std::to_string(job.sgemm ? o.sgemm_n : 0)};
  if (!job.uncached) args.push_back("--no-uncached");
  if (job.parity) {
    args.push_back("--parity");
    args.push_back(dir + "/parity.safetensors");
  }
  std::vector<std::string> quoted;
  for (const std::string& a : args) quoted.push_back(ShellQuote(a));
  const std::string command = absl::StrJoin(quoted, " ");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", command));
  std::string output;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(
        absl::StrCat("the Python baseline (", job.impl, ") failed (status ", status, "): ", command,
                     "\n(does --python name the virtualenv that scripts/install-deps.sh creates?)"));
  }
  try {
    return json::parse(output);
  } catch (const json::exception& e) {
    return absl::InternalError(
        absl::StrCat("the Python baseline (", job.impl, ") printed no JSON: ", e.what()));
  }
}

// ---------------------------------------------------------------------------------------------------
// One shape, and the report.

absl::StatusOr<std::shared_ptr<T5Model>> MakeModel(const std::string& shape) {
  if (shape != "tiny" && shape != "small") {
    return absl::InvalidArgumentError(absl::StrCat("--shapes: unknown shape \"", shape, "\" (tiny, small)"));
  }
  torch::manual_seed(0);
  return T5Model::Create(shape == "tiny" ? TinyT5Config() : SmallT5Config());
}

// Runs `measure` once, or with --wait_idle after waiting for a quiet machine, again (up to --retries
// times) while other processes used 0.1 core or more meanwhile. Adds "foreign_load_cores" (of the last
// attempt) and "attempts" to its result.
absl::StatusOr<json> MeasureQuietly(const Options& o, const std::string& what,
                                    const std::function<absl::StatusOr<json>()>& measure) {
  for (int attempt = 1;; ++attempt) {
    if (o.wait_idle > 0) WaitForIdle(o.wait_idle);
    std::cerr << what << (attempt > 1 ? absl::StrCat(" (attempt ", attempt, ")") : "") << "\n";
    bench::CpuMeter load(/*include_children=*/true);
    ASSIGN_OR_RETURN(json result, measure());
    const double foreign = load.OtherCores();
    result["foreign_load_cores"] = foreign;
    result["attempts"] = attempt;
    if (o.wait_idle <= 0 || foreign < 0.1 || attempt > o.retries) return result;
    std::cerr << what << ": other processes used " << foreign << " cores meanwhile; measuring again\n";
  }
}

// Keeps in `best` the measurement with the most tokens/s (noise only ever slows a run down) and lists
// every round's tokens/s under "rounds_tokens_per_second".
void KeepBest(json& best, json candidate) {
  json rounds = best.is_null() ? json::array() : best["rounds_tokens_per_second"];
  rounds.push_back(candidate["tokens_per_second"]);
  if (best.is_null() ||
      candidate["tokens_per_second"].get<double>() > best["tokens_per_second"].get<double>()) {
    best = std::move(candidate);
  }
  best["rounds_tokens_per_second"] = rounds;
}

// Keeps the best of each (batch, kv_cache) generation measurement of `round` in `best` (an array).
void KeepBestGeneration(json& best, const json& round) {
  for (const json& g : round) {
    bool found = false;
    for (json& b : best) {
      if (b["batch"] == g["batch"] && b["kv_cache"] == g["kv_cache"]) {
        KeepBest(b, g);
        found = true;
      }
    }
    if (!found) {
      json fresh;
      KeepBest(fresh, g);
      best.push_back(fresh);
    }
  }
}

absl::StatusOr<json> RunShape(const Options& o, const std::string& shape, bool python_sgemm) {
  ASSIGN_OR_RETURN(std::shared_ptr<T5Model> model, MakeModel(shape));
  const T5Config& c = model->config();
  const std::string dir = o.work_dir + "/" + shape;
  std::filesystem::create_directories(dir);
  RETURN_IF_ERROR(WriteT5Config(dir + "/config.json", c));
  RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", ExportWeights(*model)));
  const int train_steps = o.train_steps > 0 ? o.train_steps : (shape == "tiny" ? 100 : 10);

  json cpp;
  int64_t parameters = 0;
  for (const torch::Tensor& p : model->parameters()) parameters += p.numel();
  cpp["parameters"] = parameters;
  ASSIGN_OR_RETURN(std::vector<std::vector<int>> greedy, WriteParity(*model, o, dir + "/parity.safetensors"));
  cpp["greedy"] = greedy;
  cpp["generate"] = json::array();
  json python;  // per implementation (kPythonImpls)
  if (!o.skip_python) {
    for (const char* impl : kPythonImpls) python[impl]["generate"] = json::array();
  }

  // Rounds alternate the sides so that slow drifts of the machine hit them all alike.
  for (int round = 1; round <= o.rounds; ++round) {
    const std::string tag = absl::StrCat("[", shape, " round ", round, "/", o.rounds, "] ");
    for (const std::string& b : o.gen_batches) {
      ASSIGN_OR_RETURN(json g, MeasureQuietly(o, tag + "C++ generate batch " + b,
                                              [&] { return MeasureGeneration(*model, o, std::stoi(b)); }));
      KeepBestGeneration(cpp["generate"], json::array({g}));
    }
    // Training changes the weights; later generation rounds do the same work with them.
    ASSIGN_OR_RETURN(json t, MeasureQuietly(o, tag + "C++ train " + std::to_string(train_steps) + " steps",
                                            [&]() -> absl::StatusOr<json> {
                                              return MeasureTraining(*model, o, train_steps);
                                            }));
    KeepBest(cpp["train"], t);
    if (o.skip_python) continue;

    for (const char* impl : kPythonImpls) {
      json& side = python[impl];
      const std::string name = absl::StrCat("Python ", impl);
      PythonJob gen_job;
      gen_job.impl = impl;
      gen_job.parity = round == 1;
      gen_job.gen_batches = absl::StrJoin(o.gen_batches, ",");
      // Only the reference model's generation is measured without a cache as well: no ratio or target
      // uses transformers' uncached generate(), and on the small shape it would take longest of all.
      gen_job.uncached = std::string_view(impl) == kReference;
      gen_job.sgemm = python_sgemm && round == 1 && std::string_view(impl) == kTransformers;
      ASSIGN_OR_RETURN(json p,
                       MeasureQuietly(o, tag + name + (round == 1 ? " parity and generate" : " generate"),
                                      [&] { return RunPython(o, dir, gen_job); }));
      for (json& g : p["generate"]) g["foreign_load_cores"] = p["foreign_load_cores"];
      KeepBestGeneration(side["generate"], p["generate"]);
      if (round == 1) {
        for (const char* key : {"torch_version", "transformers_version", "python", "torch_threads",
                                "parameters", "parity", "sgemm_gflops"}) {
          if (p.contains(key)) side[key] = p[key];
        }
      }
      PythonJob train_job;
      train_job.impl = impl;
      train_job.train_steps = train_steps;
      ASSIGN_OR_RETURN(json pt, MeasureQuietly(o, tag + name + " train", [&]() -> absl::StatusOr<json> {
                         ASSIGN_OR_RETURN(json r, RunPython(o, dir, train_job));
                         return r["train"];
                       }));
      KeepBest(side["train"], pt);
    }
  }

  json result = {{"shape", shape},
                 {"config", json::parse(T5ConfigToJson(c))},
                 {"train_step_model_flops", TrainStepFlops(c, o.batch, o.src_len, o.tgt_len)},
                 {"cpp", cpp}};
  if (!o.skip_python) {
    for (const char* impl : kPythonImpls) result[impl] = python[impl];
  }
  return result;
}

const json* FindGeneration(const json& side, int batch, bool cached) {
  if (!side.contains("generate")) return nullptr;
  for (const json& g : side["generate"]) {
    if (g["batch"] == batch && g["kv_cache"] == cached) return &g;
  }
  return nullptr;
}

// Ratios of C++ tokens/s over transformers' that a shape must reach (floors: below one fails) or is
// meant to reach (aims). Generation targets exist for batch 1 and 16 only. bench/student/README.md says
// where the figures come from.
struct Targets {
  double train;
  double generate_b1;
  double generate_b16;
};

Targets Floors(const std::string& shape) {
  // The ratios measured against transformers 4.35 on the previous stack (Debian's libtorch 1.13).
  if (shape == "tiny") return {2.25, 6.6, 3.6};
  return {1.68, 2.59, 1.55};
}

constexpr Targets kAims = {2.0, 3.0, 2.0};

// A generation batch's target, or 0 when there is none for that batch size.
double GenerationTarget(const Targets& t, int batch) {
  return batch == 1 ? t.generate_b1 : batch == 16 ? t.generate_b16 : 0;
}

// "-" for a missing figure (zero or less), else the figure with `decimals` decimals and `suffix`.
std::string OrDash(double value, int decimals, const char* suffix = "") {
  return value > 0 ? absl::StrCat(absl::StrFormat("%.*f", decimals, value), suffix) : std::string("-");
}

// Adds ratios, MFU and verdicts to `shape_result`, prints its rows, and returns whether every floor met.
bool Report(const Options& o, double peak_gflops, json& r, bool& all_aims) {
  const std::string shape = r["shape"];
  const T5Config config = shape == "tiny" ? TinyT5Config() : SmallT5Config();
  const Targets floors = Floors(shape);
  const json& cpp = r["cpp"];
  const json* hf = r.contains(kTransformers) ? &r[kTransformers] : nullptr;
  const json* ref = r.contains(kReference) ? &r[kReference] : nullptr;
  bool all_pass = true;
  json rows = json::array();
  auto mfu = [&](double flops_per_second) { return flops_per_second / (peak_gflops * 1e9); };
  // One row: C++ against transformers (ratio, floor, aim, verdict) and against the reference model.
  // floor 0: no target. A missing Python figure is 0.
  auto row = [&](const std::string& what, double cpp_tps, double cpp_mfu, double hf_tps, double hf_mfu,
                 double ref_tps, double ref_mfu, double floor, double aim) {
    const double ratio = hf_tps > 0 ? cpp_tps / hf_tps : 0;
    const double ref_ratio = ref_tps > 0 ? cpp_tps / ref_tps : 0;
    const bool has_target = floor > 0;
    const bool pass = hf_tps > 0 && ratio >= floor;
    const bool aim_met = hf_tps > 0 && ratio >= aim;
    std::string verdict = "-";
    if (has_target) {
      all_pass = all_pass && pass;
      all_aims = all_aims && aim_met;
      if (hf_tps > 0) verdict = !pass ? "FAIL" : aim_met ? "PASS+AIM" : "PASS";
    }
    std::printf("%-6s %-26s %10s %12s %7s %7s %6s %-8s %10s %7s %6s %6s\n", shape.c_str(), what.c_str(),
                OrDash(cpp_tps, 1).c_str(), OrDash(hf_tps, 1).c_str(), OrDash(ratio, 2, "x").c_str(),
                has_target ? absl::StrFormat(">=%.2fx", floor).c_str() : "-",
                has_target ? absl::StrFormat("%.1fx", aim).c_str() : "-", verdict.c_str(),
                OrDash(ref_tps, 1).c_str(), OrDash(ref_ratio, 2, "x").c_str(),
                OrDash(100 * cpp_mfu, 1, "%").c_str(), OrDash(100 * hf_mfu, 1, "%").c_str());
    json out = {{"measure", what},
                {"cpp_tokens_per_second", cpp_tps},
                {"transformers_tokens_per_second", hf_tps},
                {"reference_tokens_per_second", ref_tps},
                {"ratio", ratio},
                {"ratio_vs_reference", ref_ratio},
                {"cpp_mfu", cpp_mfu},
                {"transformers_mfu", hf_mfu},
                {"reference_mfu", ref_mfu}};
    if (has_target) {
      out["floor"] = floor;
      out["aim"] = aim;
      out["pass"] = pass;
      out["aim_met"] = aim_met;
    }
    rows.push_back(out);
  };

  // Training.
  const double step_flops = r["train_step_model_flops"];
  const double tokens_per_step = double{1} * o.batch * (o.src_len + o.tgt_len);
  auto train_tps = [](const json* side) {
    return side ? (*side)["train"]["tokens_per_second"].get<double>() : 0;
  };
  auto train_mfu = [&](double tps) { return mfu(tps / tokens_per_step * step_flops); };
  const double cpp_train = cpp["train"]["tokens_per_second"];
  row(absl::StrFormat("train b%d s%d t%d", o.batch, o.src_len, o.tgt_len), cpp_train, train_mfu(cpp_train),
      train_tps(hf), train_mfu(train_tps(hf)), train_tps(ref), train_mfu(train_tps(ref)), floors.train,
      kAims.train);

  // Generation: the C++ KV-cached Generate against transformers' cached generate() and the reference
  // model with its cache, then against the reference model without one (no target).
  for (const std::string& b : o.gen_batches) {
    const int batch = std::stoi(b);
    const double flops = GenerationFlops(config, batch, o.src_len, o.gen_tokens);
    auto find = [&](const json* side, bool cached) {
      return side ? FindGeneration(*side, batch, cached) : nullptr;
    };
    auto gen_mfu = [&](const json* g) { return g ? mfu(flops / (*g)["seconds"].get<double>()) : 0; };
    auto tps = [](const json* g) { return g ? (*g)["tokens_per_second"].get<double>() : 0; };
    const json* c_gen = FindGeneration(cpp, batch, true);
    const json* hf_cached = find(hf, true);
    const json* ref_cached = find(ref, true);
    row(absl::StrFormat("generate b%d", batch), tps(c_gen), gen_mfu(c_gen), tps(hf_cached),
        gen_mfu(hf_cached), tps(ref_cached), gen_mfu(ref_cached), GenerationTarget(floors, batch),
        GenerationTarget(kAims, batch));
    const json* hf_uncached = find(hf, false);
    const json* ref_uncached = find(ref, false);
    if (hf_uncached != nullptr || ref_uncached != nullptr) {
      row(absl::StrFormat("generate b%d vs uncached", batch), tps(c_gen), gen_mfu(c_gen), tps(hf_uncached),
          gen_mfu(hf_uncached), tps(ref_uncached), gen_mfu(ref_uncached), 0, 0);
    }
  }
  r["rows"] = rows;
  double cpp_load = cpp["train"]["foreign_load_cores"];
  for (const json& g : cpp["generate"]) cpp_load = std::max(cpp_load, g["foreign_load_cores"].get<double>());
  double py_load = 0;
  for (const json* side : {hf, ref}) {
    if (side == nullptr) continue;
    py_load = std::max(py_load, (*side)["train"]["foreign_load_cores"].get<double>());
    for (const json& g : (*side)["generate"])
      py_load = std::max(py_load, g["foreign_load_cores"].get<double>());
  }
  std::printf(
      "%-6s other processes used at most %.2f cores during a C++ measurement, %.2f during a Python "
      "one%s\n",
      shape.c_str(), cpp_load, py_load,
      std::max(cpp_load, py_load) > 0.1 ? " (NOISY: rerun on a quiet machine)" : "");

  // Parity, per Python model.
  for (const char* impl : kPythonImpls) {
    if (!r.contains(impl) || !r[impl].contains("parity")) continue;
    const json& p = r[impl]["parity"];
    const auto& greedy = cpp["greedy"];
    const bool cached_equal = p["greedy_cached"] == greedy;
    const bool uncached_equal = p["greedy_uncached"] == greedy;
    const double diff = p["logits_max_abs_diff"];
    const double scale = p["logits_max_abs"];
    r["parity"][impl] = {{"logits_max_abs_diff", diff},
                         {"logits_max_abs", scale},
                         {"argmax_agreement", p["argmax_agreement"]},
                         {"greedy_equal_cached", cached_equal},
                         {"greedy_equal_uncached", uncached_equal}};
    std::printf(
        "%-6s parity vs %s: logits max |diff| %.3g (max |logit| %.3g, argmax agreement %.4f); greedy tokens "
        "(%zu rows x %d) equal cached: %s, uncached: %s\n",
        shape.c_str(), impl, diff, scale, p["argmax_agreement"].get<double>(), greedy.size(), o.gen_tokens,
        cached_equal ? "yes" : "NO", uncached_equal ? "yes" : "NO");
  }
  return all_pass;
}

int Run(Options o) {
  // The trainer's worker process setup (threads, malloc tuning, flush-to-zero), so the C++ side measures
  // what training runs.
  o.threads = ConfigureTrainingProcess(o.threads);
  absl::StatusOr<json> sgemm = MeasureQuietly(o, "sgemm peak", [&]() -> absl::StatusOr<json> {
    return json{{"n", o.sgemm_n}, {"gflops", MeasureSgemmGflops(o.sgemm_n, 5)}};
  });
  if (!sgemm.ok()) {
    std::cerr << sgemm.status() << "\n";
    return 1;
  }
  const double peak = (*sgemm)["gflops"];
  json results = {{"threads", {{"torch", at::get_num_threads()}}},
                  {"sgemm", *sgemm},
                  {"batch", o.batch},
                  {"src_len", o.src_len},
                  {"tgt_len", o.tgt_len},
                  {"gen_tokens", o.gen_tokens},
                  {"shapes", json::array()}};
  bool first = true;
  for (const std::string& shape : o.shapes) {
    absl::StatusOr<json> r = RunShape(o, shape, first);
    if (!r.ok()) {
      std::cerr << r.status() << "\n";
      return 1;
    }
    results["shapes"].push_back(*r);
    first = false;
  }

  std::printf(
      "distill-bench-student: torch %d threads; sgemm peak %.1f GFLOP/s (%dx%dx%d float32, best of 5)\n",
      at::get_num_threads(), peak, o.sgemm_n, o.sgemm_n, o.sgemm_n);
  if (!results["shapes"].empty() && results["shapes"][0].contains(kTransformers)) {
    const json& hf = results["shapes"][0][kTransformers];
    std::printf(
        "Python baselines (%s): torch %s, transformers %s (python %s), torch %d threads; sgemm %.1f "
        "GFLOP/s\n",
        o.python.c_str(), hf["torch_version"].get<std::string>().c_str(),
        hf["transformers_version"].get<std::string>().c_str(), hf["python"].get<std::string>().c_str(),
        hf["torch_threads"].get<int>(), hf.value("sgemm_gflops", 0.0));
  }
  std::printf(
      "Ratios are C++ / transformers (T5ForConditionalGeneration, generate() with its KV cache); a row fails "
      "below its floor; PASS+AIM: the aim is met too. \"reference\": the plain-PyTorch T5 "
      "(t5_reference.py).\n");
  std::printf("%-6s %-26s %10s %12s %7s %7s %6s %-8s %10s %7s %6s %6s\n", "shape", "measure (tokens/s)",
              "C++", "transformers", "ratio", "floor", "aim", "verdict", "reference", "ratio", "MFU",
              "MFU HF");
  bool all_pass = true;
  bool all_aims = true;
  for (json& r : results["shapes"]) all_pass = Report(o, peak, r, all_aims) && all_pass;
  results["all_targets_met"] = all_pass;
  results["all_aims_met"] = all_aims;
  std::printf("all floors met: %s; all aims met: %s\n", all_pass ? "yes" : "no", all_aims ? "yes" : "no");

  if (!o.out.empty()) {
    std::ofstream file(o.out);
    file << results.dump(2) << "\n";
    if (!file) {
      std::cerr << "cannot write " << o.out << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace distill::student

int main(int argc, char** argv) {
  using namespace distill;
  student::Options o;
  bool quick = false;
  cli::FlagSet flags("distill-bench-student [--quick] [--shapes tiny,small] [--out results.json]");
  flags.Bool("quick", &quick,
             "a fast smoke run: 1 round, 1 warm-up + 3 training steps, 8 new tokens, 1 generation run");
  flags.StringList("shapes", &o.shapes, "model shapes: tiny (TinyT5Config), small (t5-v1_1-small)");
  flags.Int("threads", &o.threads,
            "torch intra-op threads on both sides (0: libtorch's default here, at::get_num_threads())");
  flags.Int("train_warmup", &o.train_warmup, "untimed training steps first");
  flags.Int("train_steps", &o.train_steps, "timed training steps (0: tiny 100, small 10)");
  flags.StringList("gen_batches", &o.gen_batches, "generation batch sizes");
  flags.Int("gen_tokens", &o.gen_tokens, "new tokens per generated sequence");
  flags.Int("gen_reps", &o.gen_reps, "timed generation runs; the best counts");
  flags.String("python", &o.python,
               "interpreter with the pinned torch and transformers: the virtualenv CMake found");
  flags.String("script", &o.script, "the Python baselines (t5_reference.py)");
  flags.String("work_dir", &o.work_dir, "where config.json, model.safetensors and parity inputs go");
  flags.String("out", &o.out, "write every result as JSON here");
  flags.Bool("skip_python", &o.skip_python, "measure the C++ side only");
  flags.Double("wait_idle", &o.wait_idle,
               "before each measurement, wait up to this many seconds for other processes to go quiet, and "
               "measure again when they were not");
  flags.Int("retries", &o.retries, "with --wait_idle: repeats of a disturbed measurement");
  flags.Int("rounds", &o.rounds, "alternating C++/Python rounds; every figure is the best round's");
  auto parsed = flags.Parse(cli::Args(argc, argv));
  if (!parsed.ok() || flags.help_requested()) {
    std::cerr << (parsed.ok() ? "" : std::string(parsed.status().message()) + "\n") << flags.Usage();
    return parsed.ok() ? 0 : 2;
  }
  if (quick) {
    if (!flags.IsSet("train_warmup")) o.train_warmup = 1;
    if (!flags.IsSet("train_steps")) o.train_steps = 3;
    if (!flags.IsSet("gen_tokens")) o.gen_tokens = 8;
    if (!flags.IsSet("gen_reps")) o.gen_reps = 1;
    if (!flags.IsSet("rounds")) o.rounds = 1;
  }
  try {
    return student::Run(o);
  } catch (const c10::Error& e) {
    std::cerr << "libtorch: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}
