#include "services/trainer/train_command.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/cli/flags.h"
#include "common/dataset/example_json.h"
#include "common/logging/logging.h"
#include "common/metrics/registry.h"
#include "common/strings/strings.h"
#include "nlohmann/json.hpp"
#include "services/trainer/run_manager.h"

namespace distill::trainer {
namespace {

namespace fs = std::filesystem;

int Fail(int code, absl::string_view message) {
  std::cerr << "distill train: " << message << "\n";
  return code;
}

// Errors about what the user gave us exit 2; everything else 1.
int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return 2;
    default:
      return 1;
  }
}

std::string FileUri(const std::string& path, bool directory) {
  std::string abs = fs::absolute(path).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return strings::Cat("file://", abs, directory ? "/" : "");
}

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string FormatRate(double per_second) {
  if (per_second >= 1e6) return absl::StrFormat("%.1fM", per_second / 1e6);
  if (per_second >= 1e4) return absl::StrFormat("%.1fk", per_second / 1e3);
  return absl::StrFormat("%.0f", per_second);
}

double TotalLoss(const v1::StepProgress& p) {
  for (const v1::TaskLoss& l : p.losses()) {
    if (l.task() == v1::LOSS_TASK_TOTAL) return l.loss();
  }
  return p.losses().empty() ? 0.0 : p.losses(0).loss();
}

// Draws a run's events on stderr: a bar redrawn in place on a terminal, one line per event otherwise.
class ProgressView {
 public:
  explicit ProgressView(bool terminal) : terminal_(terminal) {}

  void Show(const v1::WatchRunResponse& event) {
    switch (event.event_case()) {
      case v1::WatchRunResponse::kRun:
        if (event.run().has_progress()) progress_ = event.run().progress();
        if (event.run().has_best_eval()) accuracy_ = event.run().best_eval().accuracy();
        if (event.run().has_latest_eval()) accuracy_ = event.run().latest_eval().accuracy();
        if (terminal_ && has_bar_) Line("");
        break;
      case v1::WatchRunResponse::kProgress: {
        progress_ = event.progress();
        const v1::StepProgress& p = progress_;
        if (terminal_) {
          DrawBar();
        } else {
          Line(absl::StrFormat("step %d/%d epoch %.2f loss %.4f lr %.3g tokens/s %s samples/s %s eta %s",
                               p.step(), p.total_steps(), p.epoch(), TotalLoss(p), p.learning_rate(),
                               FormatRate(p.tokens_per_second()), FormatRate(p.samples_per_second()),
                               FormatDuration(p.eta_seconds())));
        }
        break;
      }
      case v1::WatchRunResponse::kEval: {
        const v1::EvalResult& e = event.eval();
        accuracy_ = e.accuracy();
        Line(absl::StrFormat("eval step %d: accuracy %.4f (%d/%d) loss %.4f%s", e.step(), e.accuracy(),
                             e.correct(), e.examples(), e.loss(), e.best() ? " (best)" : ""));
        break;
      }
      case v1::WatchRunResponse::kCheckpoint:
        Line(absl::StrFormat("checkpoint step %d written in %.2fs%s", event.checkpoint().step(),
                             event.checkpoint().write_seconds(), event.checkpoint().best() ? " (best)" : ""));
        break;
      case v1::WatchRunResponse::kStateChanged: {
        const v1::RunStateChanged& s = event.state_changed();
        std::string state(v1::RunState_Name(s.state()));
        absl::string_view short_state = state;
        absl::ConsumePrefix(&short_state, "RUN_STATE_");
        std::string line = absl::AsciiStrToLower(short_state);
        if (s.resumed_from_step() > 0)
          absl::StrAppend(&line, " (resumed from step ", s.resumed_from_step(), ")");
        if (!s.message().empty()) absl::StrAppend(&line, ": ", s.message());
        Line(line);
        break;
      }
      default:
        break;
    }
  }

  // Ends the bar's line so that later output starts on a fresh one.
  void Finish() {
    if (terminal_ && has_bar_) std::fputs("\n", stderr);
    has_bar_ = false;
    std::fflush(stderr);
  }

 private:
  // A line above the bar (which is redrawn below it).
  void Line(const std::string& text) {
    if (terminal_) std::fputs("\r\x1b[K", stderr);
    if (!text.empty()) {
      std::fputs(text.c_str(), stderr);
      std::fputs("\n", stderr);
    }
    if (terminal_ && has_bar_) DrawBar();
    std::fflush(stderr);
  }

  void DrawBar() {
    const v1::StepProgress& p = progress_;
    constexpr int kWidth = 28;
    const double fraction =
        p.total_steps() > 0 ? std::min(1.0, static_cast<double>(p.step()) / p.total_steps()) : 0;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::string text =
        absl::StrFormat("\r\x1b[K[%s] %d/%d %3.0f%% loss %.4f lr %.2e %s tok/s ETA %s", bar, p.step(),
                        p.total_steps(), fraction * 100, TotalLoss(p), p.learning_rate(),
                        FormatRate(p.tokens_per_second()), FormatDuration(p.eta_seconds()));
    if (accuracy_.has_value()) absl::StrAppendFormat(&text, " acc %.3f", *accuracy_);
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
    has_bar_ = true;
  }

  const bool terminal_;
  bool has_bar_ = false;
  v1::StepProgress progress_;
  std::optional<double> accuracy_;
};

// Copies the regular files of `from` into `to`, each through a temporary file and a rename.
absl::Status CopyModel(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return absl::InternalError(strings::Cat("cannot create \"", to, "\": ", ec.message()));
  for (const fs::directory_entry& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    const fs::path target = fs::path(to) / entry.path().filename();
    const fs::path temporary = target.string() + ".tmp";
    fs::copy_file(entry.path(), temporary, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(temporary, target, ec);
    if (ec)
      return absl::InternalError(
          strings::Cat("cannot copy the model to \"", target.string(), "\": ", ec.message()));
  }
  if (ec) return absl::InternalError(strings::Cat("cannot read \"", from, "\": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

int RunTrain(const std::vector<std::string>& args) {
  std::string data, objective, init, out, run_dir, name = "distill-train", task_type = "numeric";
  std::string schedule = "linear", eval_examples, tokenizer;
  std::vector<std::string> labels;
  int64_t world_size = 1, threads = 0, max_steps = 0, batch_size = 8, grad_accum = 0, warmup_steps = 0,
          seed = 0;
  int64_t eval_interval = 0, checkpoint_interval = 0, patience = 0, log_interval = 0, vocab_size = 0;
  int64_t eval_max_examples = 0, eval_max_new_tokens = 0, max_source_tokens = 0, max_target_tokens = 0;
  int64_t max_worker_restarts = 0;
  double epochs = 1, lr = 3e-4, alpha = 0.5, max_grad_norm = 1.0, weight_decay = 0, eval_holdout = 0;
  bool verbose = false;
  cli::FlagSet flags(
      "distill train --data RECORDS.jsonl|DIR --objective standard|step_by_step|cot_sequence "
      "--init tiny|mini|small|base|CHECKPOINT_DIR --out DIR [flags]");
  flags.String("data", &data, "the curator's records.jsonl, or its output directory");
  flags.String("objective", &objective, "standard | step_by_step | cot_sequence");
  flags.String("init", &init, "a size preset (tiny, mini, small, base) or a Hugging Face checkpoint directory");
  flags.String("out", &out, "where the trained model goes (config.json, model.safetensors, spiece.model)");
  flags.String(
      "run-dir", &run_dir,
      "checkpoints and worker logs; empty = OUT/run. A checkpoint of the same spec there is resumed");
  flags.String("name", &name, "the run's name");
  flags.String("task-type", &task_type,
               "numeric | multiple_choice | classification | free_text (evaluation)");
  flags.StringList("labels", &labels, "classification labels, comma-separated, in index order");
  flags.Int("world-size", &world_size, "data-parallel worker processes");
  flags.Int("threads", &threads, "intra-op threads per worker (0 = cores / world size)");
  flags.Int("max-steps", &max_steps, "stop after this many optimizer steps (0 = no limit)");
  flags.Double("epochs", &epochs,
               "stop after this many passes over the data (0 = no limit; 0 by default with --max-steps)");
  flags.Int("batch-size", &batch_size, "records per micro-batch per worker");
  flags.Int("grad-accum", &grad_accum, "micro-batches per optimizer step (0 = 1)");
  flags.Double("lr", &lr, "peak AdamW learning rate");
  flags.Int("warmup-steps", &warmup_steps, "linear warmup steps");
  flags.String("schedule", &schedule, "linear | cosine | constant, after warmup");
  flags.Double("max-grad-norm", &max_grad_norm, "gradient clipping (0 = none)");
  flags.Double("weight-decay", &weight_decay, "AdamW weight decay");
  flags.Double("alpha", &alpha, "step_by_step: weight of the label loss (rationale: 1 - alpha)");
  flags.Double("eval-holdout", &eval_holdout, "evaluate on this share of the examples, held out of training");
  flags.String("eval-examples", &eval_examples, "evaluate on these examples (JSON lines with gold answers)");
  flags.Int("eval-max-examples", &eval_max_examples, "evaluate on at most this many examples (0 = all)");
  flags.Int("eval-max-new-tokens", &eval_max_new_tokens, "token limit of generated answers (0 = default)");
  flags.Int("eval-interval", &eval_interval, "evaluate every this many steps (0 = every epoch)");
  flags.Int("checkpoint-interval", &checkpoint_interval,
            "checkpoint every this many steps (0 = after evaluations)");
  flags.Int("early-stopping-patience", &patience, "stop after this many evaluations without improvement");
  flags.Int("log-interval", &log_interval, "progress every this many steps (0 = 10)");
  flags.Int("vocab-size", &vocab_size,
            "preset: vocabulary of the tokenizer trained on the data (0 = default)");
  flags.String("tokenizer", &tokenizer, "preset: use this spiece.model instead of training one");
  flags.Int("max-source-tokens", &max_source_tokens, "truncate inputs (0 = 512)");
  flags.Int("max-target-tokens", &max_target_tokens, "truncate targets (0 = 256)");
  flags.Int("seed", &seed, "seed of initialisation, shuffling and holdout");
  flags.Int("max-worker-restarts", &max_worker_restarts,
            "restart crashed workers from the last checkpoint this often");
  flags.Bool("verbose", &verbose, "log the trainer's and the workers' messages to stderr too");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!positional.ok()) return Fail(2, strings::Cat(positional.status().message(), "\n", flags.Usage()));
  if (!positional->empty()) return Fail(2, strings::Cat("unexpected argument \"", (*positional)[0], "\""));
  for (const auto& [flag, value] : {std::pair<const char*, const std::string*>{"--data", &data},
                                    {"--objective", &objective},
                                    {"--init", &init},
                                    {"--out", &out}}) {
    if (value->empty()) return Fail(2, strings::Cat(flag, " is required\n", flags.Usage()));
  }
  if (!fs::exists(data)) return Fail(2, strings::Cat("--data: no such file or directory \"", data, "\""));
  if (!eval_examples.empty() && eval_holdout > 0) {
    return Fail(2, "--eval-examples and --eval-holdout are alternatives; give one");
  }
  if (run_dir.empty()) run_dir = (fs::path(out) / "run").string();

  v1::StartRunRequest request;
  request.set_client_request_id("distill-train");
  v1::RunSpec& spec = *request.mutable_spec();
  spec.set_name(name);
  spec.mutable_dataset()->set_uri(FileUri(data, fs::is_directory(data)));
  absl::StatusOr<v1::TaskType> type = dataset::ParseTaskTypeName(task_type);
  if (!type.ok()) return Fail(2, strings::Cat("--task-type: ", type.status().message()));
  spec.mutable_task()->set_type(*type);
  for (const std::string& label : labels) spec.mutable_task()->add_labels()->set_name(label);
  if (fs::is_directory(init)) {
    spec.mutable_student()->mutable_checkpoint()->set_uri(FileUri(init, true));
  } else if (init.find('/') != std::string::npos) {
    return Fail(2, strings::Cat("--init: no checkpoint directory \"", init, "\""));
  } else {
    spec.mutable_student()->set_preset(init);
  }
  spec.mutable_student()->set_vocab_size(static_cast<int32_t>(vocab_size));
  if (!tokenizer.empty()) spec.mutable_student()->mutable_tokenizer()->set_uri(FileUri(tokenizer, false));

  v1::TrainingOptions& training = *spec.mutable_training();
  if (objective == "standard") {
    training.set_objective(v1::OBJECTIVE_STANDARD);
  } else if (objective == "step_by_step") {
    training.set_objective(v1::OBJECTIVE_STEP_BY_STEP);
  } else if (objective == "cot_sequence") {
    training.set_objective(v1::OBJECTIVE_COT_SEQUENCE);
  } else {
    return Fail(2, strings::Cat("--objective: expected one of: standard, step_by_step, cot_sequence, got \"",
                                objective, "\""));
  }
  if (flags.IsSet("alpha")) training.set_alpha(alpha);
  training.set_max_worker_restarts(static_cast<int32_t>(max_worker_restarts));
  v1::Hyperparameters& h = *training.mutable_hyperparameters();
  h.set_learning_rate(lr);
  h.set_batch_size(static_cast<int32_t>(batch_size));
  h.set_grad_accumulation_steps(static_cast<int32_t>(grad_accum));
  h.set_warmup_steps(warmup_steps);
  if (schedule == "linear") {
    h.set_schedule(v1::LR_SCHEDULE_LINEAR);
  } else if (schedule == "cosine") {
    h.set_schedule(v1::LR_SCHEDULE_COSINE);
  } else if (schedule == "constant") {
    h.set_schedule(v1::LR_SCHEDULE_CONSTANT);
  } else {
    return Fail(
        2, strings::Cat("--schedule: expected one of: linear, cosine, constant, got \"", schedule, "\""));
  }
  h.set_max_steps(max_steps);
  h.set_max_epochs(max_steps > 0 && !flags.IsSet("epochs") ? 0 : epochs);
  h.set_max_grad_norm(max_grad_norm);
  h.set_weight_decay(weight_decay);
  h.set_seed(static_cast<uint64_t>(seed));
  h.set_eval_interval_steps(eval_interval);
  h.set_checkpoint_interval_steps(checkpoint_interval);
  h.set_early_stopping_patience(static_cast<int32_t>(patience));
  h.set_log_interval_steps(static_cast<int32_t>(log_interval));
  h.set_max_source_tokens(static_cast<int32_t>(max_source_tokens));
  h.set_max_target_tokens(static_cast<int32_t>(max_target_tokens));
  training.mutable_distributed()->set_world_size(static_cast<int32_t>(world_size));
  training.mutable_distributed()->set_threads_per_rank(static_cast<int32_t>(threads));
  if (!eval_examples.empty()) {
    spec.mutable_eval()->mutable_examples()->set_uri(FileUri(eval_examples, false));
  } else if (eval_holdout > 0) {
    spec.mutable_eval()->set_holdout_fraction(eval_holdout);
  }
  if (spec.has_eval()) {
    spec.mutable_eval()->set_max_examples(static_cast<int32_t>(eval_max_examples));
    spec.mutable_eval()->set_max_new_tokens(static_cast<int32_t>(eval_max_new_tokens));
  }
  spec.set_output_uri(FileUri(run_dir, true));

  // SIGINT/SIGTERM are received by a thread of ours (sigtimedwait), never by a handler; the workers run
  // in their own process groups, so a terminal's Ctrl-C reaches only this process.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);

  // The progress view tells the story; the trainer's own info logs would only interleave with it.
  if (!verbose) logging::ConfigureDefault(logging::Options{.level = logging::Level::kWarning});
  TrainerConfig config;
  config.artifact_root = "";  // plain paths only
  config.forward_worker_logs = verbose;
  metrics::Registry registry;
  absl::StatusOr<std::unique_ptr<RunManager>> manager = RunManager::Create(config, &registry);
  if (!manager.ok()) return Fail(2, manager.status().message());
  absl::StatusOr<RunManager::StartResult> started = (*manager)->StartRun(request);
  if (!started.ok()) return Fail(ExitCodeFor(started.status().code()), started.status().message());
  const std::string run_id = started->run.run_id();

  std::atomic<bool> finished{false};
  std::thread signals([&] {
    const timespec interval{0, 200 * 1000 * 1000};
    while (!finished.load()) {
      const int signal_number = sigtimedwait(&shutdown_signals, nullptr, &interval);
      if (signal_number == SIGINT || signal_number == SIGTERM) {
        std::fputs("\ndistill train: cancelling (the workers stop; checkpoints stay)\n", stderr);
        (void)(*manager)->CancelRun(run_id);
      }
    }
  });
  ProgressView view(isatty(STDERR_FILENO) == 1);
  v1::Run final_run;
  absl::Status watched = (*manager)->WatchRun(run_id, [&](const v1::WatchRunResponse& event) {
    view.Show(event);
    if (event.has_run()) final_run = event.run();
    return true;
  });
  view.Finish();
  finished = true;
  signals.join();
  (*manager)->Shutdown();
  if (!watched.ok()) return Fail(1, watched.message());

  switch (final_run.state()) {
    case v1::RUN_STATE_SUCCEEDED: {
      const std::string model_dir = (fs::path(run_dir) / "model").string();
      if (absl::Status copied = CopyModel(model_dir, out); !copied.ok()) return Fail(1, copied.message());
      nlohmann::json summary = {{"run_id", run_id},
                                {"state", "SUCCEEDED"},
                                {"model", fs::absolute(out).lexically_normal().string()},
                                {"run_dir", fs::absolute(run_dir).lexically_normal().string()},
                                {"steps", final_run.progress().step()},
                                {"worker_restarts", final_run.worker_restarts()}};
      if (final_run.has_best_eval()) {
        summary["best_eval"] = {{"step", final_run.best_eval().step()},
                                {"accuracy", final_run.best_eval().accuracy()},
                                {"examples", final_run.best_eval().examples()},
                                {"correct", final_run.best_eval().correct()}};
      }
      std::cout << summary.dump() << "\n";
      return 0;
    }
    case v1::RUN_STATE_CANCELLED:
      return Fail(1, strings::Cat("cancelled; checkpoints stay in ", run_dir,
                                  ", and the same command resumes from the last one"));
    default:
      return Fail(
          ExitCodeFor(static_cast<absl::StatusCode>(final_run.failure_code())),
          strings::Cat("run failed: ", final_run.failure_cause(), " (worker logs: ", run_dir, "/logs/)"));
  }
}

}  // namespace distill::trainer
