#include "services/trainer/training/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "c10/util/Exception.h"
#include "common/artifacts/artifacts.h"
#include "common/clock/timestamp.h"
#include "common/dataset/example_json.h"
#include "common/logging/logging.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/checkpoint/file_io.h"
#include "common/student/objectives/objectives.h"
#include "common/student/optim/fused_adamw.h"
#include "common/student/runtime/autocast.h"
#include "common/student/runtime/device.h"
#include "common/student/runtime/training_process.h"
#include "common/student/student.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/curator/answers/normalizer.h"
#include "services/trainer/training/batching.h"
#include "services/trainer/training/checkpoint.h"
#include "services/trainer/training/collective.h"
#include "services/trainer/training/evaluation.h"
#include "services/trainer/training/lr_schedule.h"
#include "services/trainer/training/records.h"
#include "services/trainer/training/spec.h"
#include "services/trainer/training/student_init.h"
#include "torch/torch.h"

namespace distill::trainer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

student::ObjectiveOptions ObjectiveOptionsOf(const RunSettings& s) {
  student::ObjectiveOptions o;
  switch (s.objective) {
    case v1::OBJECTIVE_STEP_BY_STEP:
      o.kind = student::ObjectiveKind::kStepByStep;
      break;
    case v1::OBJECTIVE_COT_SEQUENCE:
      o.kind = student::ObjectiveKind::kCotSequence;
      break;
    default:
      o.kind = student::ObjectiveKind::kStandard;
  }
  o.alpha = s.alpha;
  switch (s.token_distillation) {
    case v1::TOKEN_DISTILLATION_FORWARD_KL:
      o.token_kl = student::TokenKl::kForward;
      break;
    case v1::TOKEN_DISTILLATION_REVERSE_KL:
      o.token_kl = student::TokenKl::kReverse;
      break;
    default:
      o.token_kl = student::TokenKl::kNone;
  }
  o.token_kl_weight = s.token_distillation_weight;
  o.max_source_tokens = s.max_source_tokens;
  o.max_target_tokens = s.max_target_tokens;
  o.max_rationale_tokens = s.max_target_tokens;
  return o;
}

// The seed of libtorch's generator for `step` on `rank`.
uint64_t StepSeed(uint64_t seed, int rank, int64_t step) {
  DeterministicRng rng(
      seed, (static_cast<uint64_t>(rank) << 40) ^ static_cast<uint64_t>(step) ^ 0x5eed0000000000ULL);
  return rng.Next();
}

v1::WatchRunResponse Event() {
  v1::WatchRunResponse event;
  *event.mutable_time() = ToTimestamp(absl::Now());
  return event;
}

// Token and record counts of a set of encoded records.
struct Counts {
  int64_t label_tokens = 0;
  int64_t rationale_tokens = 0;
  int64_t kl_positions = 0;
  int64_t tokens = 0;
  int64_t records = 0;
};

Counts CountRecords(const std::vector<int64_t>& indices, const std::vector<student::EncodedRecord>& encoded) {
  Counts c;
  for (int64_t i : indices) {
    const student::EncodedRecord& r = encoded[static_cast<size_t>(i)];
    c.label_tokens += static_cast<int64_t>(r.label.target.size());
    c.kl_positions += r.label.aligned_positions();
    if (r.rationale) {
      c.rationale_tokens += static_cast<int64_t>(r.rationale->target.size());
      c.kl_positions += r.rationale->aligned_positions();
    }
    c.tokens += r.tokens();
    ++c.records;
  }
  return c;
}

void MoveToDevice(student::TaskBatch& t, const torch::Device& device) {
  for (torch::Tensor* x :
       {&t.source_ids, &t.source_mask, &t.labels, &t.teacher_ids, &t.teacher_logprobs, &t.teacher_mask}) {
    if (x->defined()) *x = x->to(device);
  }
}

// Sums since the previous progress event.
struct Window {
  int64_t steps = 0;
  double total = 0, label = 0, rationale = 0, token_kl = 0;
  double tokens = 0, samples = 0, seconds = 0;
  double data = 0, forward = 0, backward = 0, all_reduce = 0, optimizer = 0;
};

class RankTrainer {
 public:
  RankTrainer(const v1::RunSpec& spec, const WorkerArgs& args, const EventSink& sink,
              const TrainerHooks& hooks)
      : spec_(spec), args_(args), sink_(sink), hooks_(hooks) {}

  absl::Status Run() {
    RETURN_IF_ERROR(Setup());
    RETURN_IF_ERROR(LoadData());
    RETURN_IF_ERROR(BuildStudent());
    RETURN_IF_ERROR(Prepare());
    RETURN_IF_ERROR(Loop());
    return Finish();
  }

 private:
  bool lead() const { return args_.rank == 0; }

  void Emit(v1::WatchRunResponse event) {
    if (lead() && sink_) sink_(event);
  }

  absl::Status Setup() {
    RETURN_IF_ERROR(ValidateRunSpec(spec_));
    s_ = ResolveRunSettings(spec_);
    if (args_.world_size != s_.world_size) {
      return absl::InvalidArgumentError(strings::Cat("--world-size ", args_.world_size,
                                                     " does not match training.distributed.world_size ",
                                                     s_.world_size));
    }
    if (args_.rank < 0 || args_.rank >= args_.world_size) {
      return absl::InvalidArgumentError(
          strings::Cat("--rank ", args_.rank, ": must be in [0, ", args_.world_size, ")"));
    }
    if (args_.run_dir.empty()) return absl::InvalidArgumentError("--run-dir: required");
    objective_ = ObjectiveOptionsOf(s_);
    RETURN_IF_ERROR(student::ValidateObjectiveOptions(objective_));

    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = args_.threads > 0         ? args_.threads
                        : s_.threads_per_rank > 0 ? s_.threads_per_rank
                                                  : std::max(1, cores / s_.world_size);
    // The rank's cores go to libtorch's intra-op pool, which also runs MKL's matrix products.
    student::ConfigureTrainingProcess(threads);
    RETURN_IF_ERROR(CheckDeviceOnThisHost(spec_));
    if (s_.use_cuda) {
      const int gpu = s_.cuda_index >= 0 ? s_.cuda_index : args_.rank;
      ASSIGN_OR_RETURN(device_, student::ResolveDevice({student::DeviceRequest::Kind::kCuda, gpu}, gpu,
                                                       "training.distributed.device"));
    }

    RendezvousOptions rendezvous;
    rendezvous.master_addr = args_.master_addr;
    rendezvous.master_port = args_.master_port;
    rendezvous.rank = args_.rank;
    rendezvous.world_size = args_.world_size;
    rendezvous.nccl = s_.use_cuda;
    ASSIGN_OR_RETURN(collective_, Rendezvous(rendezvous));
    logging::Info("trainer worker started", {{"rank", args_.rank},
                                             {"world_size", args_.world_size},
                                             {"threads", threads},
                                             {"run_dir", args_.run_dir}});
    if (lead()) RemoveIncompleteWrites(args_.run_dir);
    return absl::OkStatus();
  }

  absl::Status LoadData() {
    if (spec_.dataset().uri().rfind("artifact://", 0) == 0) {
      return absl::InvalidArgumentError(
          strings::Cat("dataset.uri: \"", spec_.dataset().uri(),
                       "\" must be resolved to a local path before workers start"));
    }
    ASSIGN_OR_RETURN(const std::string dataset_path,
                     artifacts::ResolveUri("", spec_.dataset().uri(), "dataset.uri"));
    ASSIGN_OR_RETURN(records_path_, RecordsPath(dataset_path));
    ASSIGN_OR_RETURN(dataset_hash_, artifacts::FileContentHash(records_path_));
    RETURN_IF_ERROR(VerifyDatasetHash());
    ASSIGN_OR_RETURN(std::vector<RecordLine> records, ReadTrainingRecords(records_path_));
    RETURN_IF_ERROR(CheckRecordsFitObjective(records, s_.objective, records_path_));

    ASSIGN_OR_RETURN(curator::AnswerNormalizer normalizer, curator::AnswerNormalizer::Create(spec_.task()));
    normalizer_.emplace(std::move(normalizer));
    if (s_.holdout_fraction > 0) {
      ASSIGN_OR_RETURN(DataSplit split,
                       HoldoutSplit(std::move(records), s_.holdout_fraction, s_.seed, s_.objective));
      train_ = std::move(split.train);
      eval_ = std::move(split.eval);
    } else {
      train_ = std::move(records);
      if (s_.evaluate) {
        ASSIGN_OR_RETURN(const std::string eval_path,
                         artifacts::ResolveUri("", spec_.eval().examples().uri(), "eval.examples.uri"));
        RETURN_IF_ERROR(
            artifacts::VerifyContentHash(eval_path, spec_.eval().examples().content_hash(), "eval.examples"));
        ASSIGN_OR_RETURN(eval_, ReadEvalExamples(eval_path, *normalizer_, s_.objective));
      }
    }
    if (s_.eval_max_examples > 0 && static_cast<int64_t>(eval_.size()) > s_.eval_max_examples) {
      eval_.resize(static_cast<size_t>(s_.eval_max_examples));
    }
    return absl::OkStatus();
  }

  // A dataset's content_hash is the records file's, or, for a curator output directory, its manifest's; the
  // service may already have resolved such a directory to its records.jsonl and kept the directory's hash.
  absl::Status VerifyDatasetHash() const {
    const std::string& expected = spec_.dataset().content_hash();
    if (expected.empty() || expected == dataset_hash_) return absl::OkStatus();
    const std::string manifest = (fs::path(records_path_).parent_path() / "manifest.json").string();
    absl::StatusOr<std::string> manifest_hash = artifacts::FileContentHash(manifest);
    if (manifest_hash.ok() && *manifest_hash == expected) return absl::OkStatus();
    return absl::FailedPreconditionError(
        strings::Cat("dataset.content_hash: ", records_path_, " hashes to ", dataset_hash_,
                     manifest_hash.ok() ? strings::Cat(" (its manifest.json to ", *manifest_hash, ")") : "",
                     ", expected ", expected));
  }

  absl::Status BuildStudent() {
    ASSIGN_OR_RETURN(std::optional<std::string> latest, LatestCheckpoint(args_.run_dir));
    if (latest) {
      ASSIGN_OR_RETURN(state_, ReadTrainerState(*latest));
      const std::string spec_hash = SpecHash(spec_);
      if (state_.spec_hash != spec_hash) {
        return absl::FailedPreconditionError(
            strings::Cat(*latest, " was written for a different spec (", state_.spec_hash, ", this run's is ",
                         spec_hash, "); resume with the original spec or use a new output directory"));
      }
      if (state_.dataset_hash != dataset_hash_) {
        return absl::FailedPreconditionError(strings::Cat(*latest, " was written for dataset ",
                                                          state_.dataset_hash, ", but ", records_path_,
                                                          " is now ", dataset_hash_));
      }
      ASSIGN_OR_RETURN(student_, LoadStudentDir(*latest, s_.dropout_rate, "checkpoint"));
      resume_dir_ = *latest;
      logging::Info("resuming", {{"rank", args_.rank}, {"checkpoint", *latest}, {"step", state_.step}});
    } else {
      state_.spec_hash = SpecHash(spec_);
      state_.dataset_hash = dataset_hash_;
      state_.seed = s_.seed;
      const v1::StudentInit& init = spec_.student();
      if (init.source_case() == v1::StudentInit::kCheckpoint) {
        ASSIGN_OR_RETURN(const std::string dir,
                         artifacts::ResolveUri("", init.checkpoint().uri(), "student.checkpoint.uri"));
        RETURN_IF_ERROR(artifacts::VerifyContentHash((fs::path(dir) / "manifest.json").string(),
                                                     init.checkpoint().content_hash(), "student.checkpoint"));
        ASSIGN_OR_RETURN(student_, LoadStudentDir(dir, s_.dropout_rate, "student.checkpoint"));
      } else {
        ASSIGN_OR_RETURN(const student::T5Config preset, student::PresetConfig(init.preset()));
        std::shared_ptr<const student::Tokenizer> tokenizer;
        if (init.has_tokenizer()) {
          ASSIGN_OR_RETURN(const std::string path,
                           artifacts::ResolveUri("", init.tokenizer().uri(), "student.tokenizer.uri"));
          RETURN_IF_ERROR(
              artifacts::VerifyContentHash(path, init.tokenizer().content_hash(), "student.tokenizer"));
          absl::StatusOr<std::unique_ptr<student::Tokenizer>> loaded = student::Tokenizer::Load(path);
          if (!loaded.ok())
            return absl::Status(loaded.status().code(),
                                strings::Cat("student.tokenizer: ", loaded.status().message()));
          tokenizer = std::move(*loaded);
        } else {
          // Rank 0 trains it; the others receive its bytes, so every rank has the same tokenizer without
          // training it again.
          std::string serialized;
          if (lead()) {
            ASSIGN_OR_RETURN(std::unique_ptr<student::Tokenizer> trained,
                             TrainRunTokenizer(TokenizerCorpus(train_, s_.objective),
                                               PresetVocabSize(preset, init.vocab_size())));
            serialized = trained->SerializedModel();
          }
          ASSIGN_OR_RETURN(serialized, collective_->ShareBytes("tokenizer", std::move(serialized), 0));
          ASSIGN_OR_RETURN(std::unique_ptr<student::Tokenizer> shared,
                           student::Tokenizer::FromSerialized(std::move(serialized), "the run's tokenizer"));
          tokenizer = std::move(shared);
        }
        ASSIGN_OR_RETURN(student_, PresetStudent(preset, std::move(tokenizer), s_.seed, s_.dropout_rate));
      }
    }
    model_ = student_.model.get();
    try {
      model_->module().to(device_);
      model_->module().train();
    } catch (const c10::Error& e) {
      return absl::InternalError(
          strings::Cat("moving the model to ", device_.str(), ": ", e.what_without_backtrace()));
    }
    // Every rank starts from rank 0's parameters, whatever produced them.
    std::vector<torch::Tensor> parameters;
    for (const torch::Tensor& p : model_->module().parameters()) parameters.push_back(p.detach());
    return collective_->Broadcast(parameters, 0);
  }

  absl::Status Prepare() {
    const student::Tokenizer& tokenizer = *student_.tokenizer;
    encoded_.reserve(train_.size());
    std::vector<int64_t> lengths;
    for (const RecordLine& r : train_) {
      absl::StatusOr<student::EncodedRecord> encoded = student::EncodeRecord(tokenizer, objective_, r.record);
      if (!encoded.ok()) {
        return absl::FailedPreconditionError(
            strings::Cat(records_path_, ":", r.line, ": ", encoded.status().message()));
      }
      lengths.push_back(encoded->tokens());
      encoded_.push_back(std::move(*encoded));
    }
    if (encoded_.empty())
      return absl::FailedPreconditionError("dataset: no training records left after the holdout split");
    BatchPlanOptions plan_options;
    plan_options.batch_size = s_.batch_size;
    plan_options.grad_accumulation_steps = s_.grad_accumulation_steps;
    plan_options.world_size = s_.world_size;
    plan_options.seed = s_.seed;
    ASSIGN_OR_RETURN(BatchPlan plan, BatchPlan::Create(std::move(lengths), plan_options));
    plan_.emplace(std::move(plan));
    total_steps_ = TotalSteps(s_.max_steps, s_.max_epochs, plan_->steps_per_epoch());
    state_.total_steps = total_steps_;
    lr_.peak = s_.learning_rate;
    lr_.warmup_steps = s_.warmup_steps;
    lr_.schedule = s_.schedule;
    lr_.total_steps = total_steps_;

    try {
      std::vector<torch::Tensor> decay, no_decay;
      for (const torch::Tensor& p : model_->module().parameters()) {
        parameters_.push_back(p);
        (p.dim() >= 2 ? decay : no_decay).push_back(p);
      }
      auto options = [&](double weight_decay) {
        return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(s_.learning_rate)
                                                                .betas({s_.adam_beta1, s_.adam_beta2})
                                                                .eps(s_.adam_epsilon)
                                                                .weight_decay(weight_decay));
      };
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(decay, options(s_.weight_decay));
      groups.emplace_back(no_decay, options(0.0));
      optimizer_ = std::make_unique<student::FusedAdamW>(std::move(groups), *options(s_.weight_decay));
    } catch (const c10::Error& e) {
      return absl::InternalError(strings::Cat("building the optimizer: ", e.what_without_backtrace()));
    }
    if (!resume_dir_.empty()) RETURN_IF_ERROR(LoadOptimizerState(resume_dir_, *optimizer_));
    reducer_ = std::make_unique<GradientReducer>(parameters_);

    if (lead() && s_.evaluate) {
      Evaluator::Options options;
      options.kind = objective_.kind;
      options.max_source_tokens = s_.max_source_tokens;
      options.max_target_tokens = s_.max_target_tokens;
      options.max_new_tokens = s_.eval_max_new_tokens;
      options.batch_size = std::max(32, s_.batch_size);
      ASSIGN_OR_RETURN(evaluator_, Evaluator::Create(eval_, *normalizer_, tokenizer, options));
    }

    v1::WatchRunResponse event = Event();
    event.mutable_state_changed()->set_state(v1::RUN_STATE_RUNNING);
    if (!resume_dir_.empty()) {
      event.mutable_state_changed()->set_resumed_from_step(state_.step);
      event.mutable_state_changed()->set_message(strings::Cat("resumed from ", CheckpointName(state_.step)));
    } else {
      event.mutable_state_changed()->set_message(strings::Cat("training ", encoded_.size(), " records for ",
                                                              total_steps_, " steps on ", s_.world_size,
                                                              s_.world_size == 1 ? " rank" : " ranks"));
    }
    Emit(std::move(event));
    last_checkpoint_step_ = resume_dir_.empty() ? -1 : state_.step;
    return absl::OkStatus();
  }

  bool Done() const { return state_.step >= total_steps_ || state_.stopped_early; }

  absl::Status Loop() {
    while (!Done()) {
      RETURN_IF_ERROR(Step());
      const bool epoch_done = state_.position.batch == 0;
      const int64_t step = state_.step;
      const bool last = step >= total_steps_;
      if (lead() && (step % s_.log_interval_steps == 0 || last)) EmitProgress();

      bool evaluated = false, best = false;
      if (s_.evaluate &&
          (last || (s_.eval_interval_steps > 0 ? step % s_.eval_interval_steps == 0 : epoch_done))) {
        RETURN_IF_ERROR(Evaluate(&best));
        evaluated = true;
      }
      const bool checkpoint = last || state_.stopped_early || best ||
                              (s_.checkpoint_interval_steps > 0 ? step % s_.checkpoint_interval_steps == 0
                                                                : (s_.evaluate ? evaluated : epoch_done));
      if (checkpoint && lead()) RETURN_IF_ERROR(Checkpoint());
      if (hooks_.after_step) hooks_.after_step(step);
      if (hooks_.abort_after_step > 0 && step == hooks_.abort_after_step) {
        return absl::AbortedError(strings::Cat("aborted after step ", step, " (test hook)"));
      }
    }
    return absl::OkStatus();
  }

  // One optimizer step over this rank's micro-batches of the global batch.
  absl::Status Step() {
    const Clock::time_point start = Clock::now();
    double data = 0, forward = 0, backward = 0, all_reduce = 0, optimizer = 0;
    const std::vector<int64_t>& global = plan_->GlobalBatch(state_.position);
    const Counts all = CountRecords(global, encoded_);
    const std::vector<std::vector<int64_t>> micro = plan_->RankMicroBatches(state_.position, args_.rank);
    std::vector<student::ObjectiveBatch> batches;
    std::vector<Counts> counts;
    try {
      for (const std::vector<int64_t>& indices : micro) {
        if (indices.empty()) continue;
        std::vector<const student::EncodedRecord*> records;
        for (int64_t i : indices) records.push_back(&encoded_[static_cast<size_t>(i)]);
        batches.push_back(student::Collate(records));
        if (device_.is_cuda()) {
          MoveToDevice(batches.back().label, device_);
          if (batches.back().rationale) MoveToDevice(*batches.back().rationale, device_);
        }
        counts.push_back(CountRecords(indices, encoded_));
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(
          strings::Cat("step ", state_.step + 1, ": collating: ", e.what_without_backtrace()));
    }
    data = SecondsSince(start);

    // Global token-mean losses: [label, rationale, token_kl] summed over micro-batches and ranks.
    torch::Tensor losses = torch::zeros({3}, torch::kFloat64);
    try {
      torch::manual_seed(StepSeed(s_.seed, args_.rank, state_.step));
      const bool step_by_step = objective_.kind == student::ObjectiveKind::kStepByStep;
      const double label_weight = step_by_step ? objective_.alpha : 1.0;
      for (size_t m = 0; m < batches.size(); ++m) {
        Clock::time_point t = Clock::now();
        student::LossTerms terms;
        {
          // bfloat16 products on a GPU (float32 master weights); nothing on the CPU.
          student::CudaAutocastScope autocast(device_);
          terms = student::ComputeLoss(*model_, batches[m], objective_);
        }
        const double label_share =
            static_cast<double>(counts[m].label_tokens) / static_cast<double>(all.label_tokens);
        torch::Tensor loss = terms.label * (label_weight * label_share);
        losses[0] += terms.label.detach().to(torch::kCPU, torch::kFloat64) * label_share;
        if (terms.rationale.defined() && all.rationale_tokens > 0) {
          const double share =
              static_cast<double>(counts[m].rationale_tokens) / static_cast<double>(all.rationale_tokens);
          loss = loss + terms.rationale * ((1.0 - objective_.alpha) * share);
          losses[1] += terms.rationale.detach().to(torch::kCPU, torch::kFloat64) * share;
        }
        if (terms.token_kl.defined() && all.kl_positions > 0) {
          const double share =
              static_cast<double>(counts[m].kl_positions) / static_cast<double>(all.kl_positions);
          loss = loss + terms.token_kl * (objective_.token_kl_weight * share);
          losses[2] += terms.token_kl.detach().to(torch::kCPU, torch::kFloat64) * share;
        }
        forward += SecondsSince(t);
        t = Clock::now();
        loss.backward();
        backward += SecondsSince(t);
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(strings::Cat("step ", state_.step + 1, ": ", e.what_without_backtrace()));
    }

    Clock::time_point t = Clock::now();
    RETURN_IF_ERROR(reducer_->AllReduce(*collective_));
    std::vector<torch::Tensor> scalars{losses};
    RETURN_IF_ERROR(collective_->AllReduceSum(scalars));
    if (collective_->world_size() > 1) all_reduce = SecondsSince(t);  // "0 with one rank"

    t = Clock::now();
    double grad_norm = 0;
    const double label = losses[0].item<double>(), rationale = losses[1].item<double>(),
                 token_kl = losses[2].item<double>();
    double total = objective_.kind == student::ObjectiveKind::kStepByStep
                       ? objective_.alpha * label + (1 - objective_.alpha) * rationale
                       : label;
    if (objective_.token_kl != student::TokenKl::kNone) total += objective_.token_kl_weight * token_kl;
    try {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> norms;
      for (const torch::Tensor& p : parameters_) {
        if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat64));
      }
      grad_norm = norms.empty() ? 0.0 : torch::stack(norms).norm(2).item<double>();
      if (!std::isfinite(total) || !std::isfinite(grad_norm)) {
        return absl::FailedPreconditionError(
            strings::Cat("step ", state_.step + 1, ": the loss diverged (loss ", total, ", gradient norm ",
                         grad_norm, "); lower training.hyperparameters.learning_rate or set max_grad_norm"));
      }
      if (s_.max_grad_norm > 0) {
        const double coefficient = s_.max_grad_norm / (grad_norm + 1e-6);
        if (coefficient < 1) {
          for (const torch::Tensor& p : parameters_) {
            if (p.grad().defined()) p.grad().mul_(coefficient);
          }
        }
      }
      const double lr = LearningRate(lr_, state_.step);
      for (torch::optim::OptimizerParamGroup& group : optimizer_->param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      optimizer_->step();
      optimizer_->ZeroGrad();
      state_.learning_rate = lr;
    } catch (const c10::Error& e) {
      return absl::InternalError(
          strings::Cat("step ", state_.step + 1, ": optimizer: ", e.what_without_backtrace()));
    }
    optimizer = SecondsSince(t);

    ++state_.step;
    state_.position = plan_->Next(state_.position);
    last_grad_norm_ = grad_norm;
    window_.steps += 1;
    window_.total += total;
    window_.label += label;
    window_.rationale += rationale;
    window_.token_kl += token_kl;
    window_.tokens += static_cast<double>(all.tokens);
    window_.samples += static_cast<double>(all.records);
    window_.seconds += SecondsSince(start);
    window_.data += data;
    window_.forward += forward;
    window_.backward += backward;
    window_.all_reduce += all_reduce;
    window_.optimizer += optimizer;
    return absl::OkStatus();
  }

  void EmitProgress() {
    if (window_.steps == 0) return;
    const double n = static_cast<double>(window_.steps);
    v1::WatchRunResponse event = Event();
    v1::StepProgress* p = event.mutable_progress();
    p->set_step(state_.step);
    p->set_total_steps(total_steps_);
    p->set_epoch(plan_->EpochProgress(state_.position));
    state_.last_losses.clear();
    auto add_loss = [&](v1::LossTask task, const char* name, double sum) {
      v1::TaskLoss* loss = p->add_losses();
      loss->set_task(task);
      loss->set_loss(std::max(0.0, sum / n));
      state_.last_losses.emplace_back(name, loss->loss());
    };
    add_loss(v1::LOSS_TASK_TOTAL, "total", window_.total);
    add_loss(v1::LOSS_TASK_LABEL, "label", window_.label);
    if (objective_.kind == student::ObjectiveKind::kStepByStep)
      add_loss(v1::LOSS_TASK_RATIONALE, "rationale", window_.rationale);
    if (objective_.token_kl != student::TokenKl::kNone)
      add_loss(v1::LOSS_TASK_TOKEN_KL, "token_kl", window_.token_kl);
    p->set_learning_rate(state_.learning_rate);
    if (window_.seconds > 0) {
      p->set_tokens_per_second(window_.tokens / window_.seconds);
      p->set_samples_per_second(window_.samples / window_.seconds);
    }
    p->set_grad_norm(last_grad_norm_);
    const double step_seconds = window_.seconds / n;
    p->set_step_seconds(step_seconds);
    p->set_eta_seconds(EtaSeconds(step_seconds));
    v1::StepPhases* phases = p->mutable_phases();
    phases->set_data(window_.data / n);
    phases->set_forward(window_.forward / n);
    phases->set_backward(window_.backward / n);
    phases->set_all_reduce(window_.all_reduce / n);
    phases->set_optimizer(window_.optimizer / n);
    window_ = Window();
    Emit(std::move(event));
  }

  double EtaSeconds(double step_seconds) const {
    const int64_t remaining = std::max<int64_t>(0, total_steps_ - state_.step);
    double evals = 0;
    if (s_.evaluate && remaining > 0) {
      if (s_.eval_interval_steps > 0) {
        evals = static_cast<double>(total_steps_ / s_.eval_interval_steps -
                                    state_.step / s_.eval_interval_steps) +
                (total_steps_ % s_.eval_interval_steps != 0 ? 1 : 0);
      } else {
        evals = std::ceil(static_cast<double>(remaining) / static_cast<double>(plan_->steps_per_epoch()));
      }
    }
    return static_cast<double>(remaining) * step_seconds + evals * last_eval_seconds_;
  }

  // Evaluates on rank 0 and shares its early-stopping decision. `best`: this evaluation is the best so far.
  absl::Status Evaluate(bool* best) {
    *best = false;
    torch::Tensor stop = torch::zeros({1}, torch::kFloat32);
    if (lead()) {
      ASSIGN_OR_RETURN(const EvalOutcome outcome, evaluator_->Run(*model_, *student_.tokenizer, device_));
      last_eval_seconds_ = outcome.seconds;
      v1::EvalResult result;
      result.set_step(state_.step);
      result.set_accuracy(outcome.accuracy);
      result.set_examples(outcome.examples);
      result.set_correct(outcome.correct);
      result.set_loss(outcome.loss);
      result.set_seconds(outcome.seconds);
      // Ties in accuracy go to the lower eval loss (small eval sets saturate).
      const std::optional<v1::EvalResult>& previous = state_.best_eval;
      *best = !previous || outcome.accuracy > previous->accuracy() ||
              (outcome.accuracy == previous->accuracy() && outcome.loss < previous->loss());
      result.set_best(*best);
      if (*best) {
        state_.best_eval = result;
        state_.best_checkpoint = CheckpointName(state_.step);
      }
      state_.latest_eval = result;
      const double reference = state_.early_stopping_reference;
      if (reference < 0 ||
          (outcome.accuracy > reference && outcome.accuracy - reference >= s_.early_stopping_min_delta)) {
        state_.early_stopping_reference = outcome.accuracy;
        state_.evals_without_improvement = 0;
      } else {
        ++state_.evals_without_improvement;
      }
      if (s_.early_stopping_patience > 0 && state_.evals_without_improvement >= s_.early_stopping_patience) {
        stop[0] = 1;
      }
      v1::WatchRunResponse event = Event();
      *event.mutable_eval() = result;
      Emit(std::move(event));
    }
    std::vector<torch::Tensor> decision{stop};
    RETURN_IF_ERROR(collective_->Broadcast(decision, 0));
    if (stop[0].item<float>() > 0) {
      state_.stopped_early = true;
      logging::Info("early stopping", {{"rank", args_.rank}, {"step", state_.step}});
    }
    return absl::OkStatus();
  }

  absl::Status Checkpoint() {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::string> dir = WriteCheckpoint(args_.run_dir, student_, *optimizer_, state_);
    if (!dir.ok()) return dir.status();
    last_checkpoint_step_ = state_.step;
    v1::WatchRunResponse event = Event();
    v1::CheckpointSaved* saved = event.mutable_checkpoint();
    saved->set_step(state_.step);
    saved->mutable_checkpoint()->set_uri(strings::Cat("file://", fs::absolute(*dir).string(), "/"));
    saved->set_write_seconds(SecondsSince(start));
    saved->set_best(state_.best_checkpoint == CheckpointName(state_.step));
    Emit(std::move(event));
    return absl::OkStatus();
  }

  absl::Status Finish() {
    if (lead()) {
      if (last_checkpoint_step_ != state_.step) RETURN_IF_ERROR(Checkpoint());
      const std::string source =
          fs::path(CheckpointsDir(args_.run_dir)) / (s_.evaluate && !state_.best_checkpoint.empty()
                                                         ? state_.best_checkpoint
                                                         : CheckpointName(state_.step));
      ASSIGN_OR_RETURN(const std::string manifest_hash,
                       WriteModelDir(args_.run_dir, source, Manifest(source)));
      logging::Info("run finished", {{"step", state_.step},
                                     {"model", (fs::path(args_.run_dir) / kModelDir).string()},
                                     {"manifest", manifest_hash}});
    }
    // Other ranks leave only once the model is written, so their exit status covers it.
    return collective_->Barrier();
  }

  std::string Manifest(const std::string& source) const {
    json m;
    m["format"] = "distill.student_model.v1";
    m["dataset"] = {
        {"uri", spec_.dataset().uri()}, {"records", records_path_}, {"content_hash", dataset_hash_}};
    m["spec"] = json::parse(dataset::ProtoToJson(spec_));
    m["spec_hash"] = state_.spec_hash;
    m["objective"] = v1::Objective_Name(s_.objective);
    m["task"] = json::parse(dataset::ProtoToJson(spec_.task()));
    m["checkpoint"] = fs::path(source).filename().string();
    json metrics;
    metrics["steps"] = state_.step;
    metrics["total_steps"] = total_steps_;
    metrics["epochs"] = plan_->EpochProgress(state_.position);
    metrics["stopped_early"] = state_.stopped_early;
    json losses = json::object();
    for (const auto& [name, value] : state_.last_losses) losses[name] = value;
    metrics["train_loss"] = losses;
    metrics["latest_eval"] =
        state_.latest_eval ? json::parse(dataset::ProtoToJson(*state_.latest_eval)) : json(nullptr);
    metrics["best_eval"] =
        state_.best_eval ? json::parse(dataset::ProtoToJson(*state_.best_eval)) : json(nullptr);
    m["final_metrics"] = metrics;
    return m.dump();
  }

  const v1::RunSpec& spec_;
  const WorkerArgs& args_;
  const EventSink& sink_;
  const TrainerHooks hooks_;

  RunSettings s_;
  student::ObjectiveOptions objective_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Collective> collective_;

  std::string records_path_;
  std::string dataset_hash_;
  std::optional<curator::AnswerNormalizer> normalizer_;
  std::vector<RecordLine> train_;
  std::vector<EvalExample> eval_;

  student::Student student_;
  student::StudentModel* model_ = nullptr;
  std::string resume_dir_;
  TrainerState state_;

  std::vector<student::EncodedRecord> encoded_;
  std::optional<BatchPlan> plan_;
  int64_t total_steps_ = 1;
  LrScheduleOptions lr_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<student::FusedAdamW> optimizer_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<Evaluator> evaluator_;

  Window window_;
  double last_grad_norm_ = 0;
  double last_eval_seconds_ = 0;
  int64_t last_checkpoint_step_ = -1;
};

}  // namespace

absl::StatusOr<v1::RunSpec> ReadRunSpec(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / std::string(kSpecFile)).string();
  ASSIGN_OR_RETURN(const std::string text, student::ReadFileToString(path));
  v1::RunSpec spec;
  const auto parsed = google::protobuf::util::JsonStringToMessage(text, &spec);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(strings::Cat(path, ": not a RunSpec: ", std::string(parsed.message())));
  }
  return spec;
}

absl::Status TrainWithSpec(const v1::RunSpec& spec, const WorkerArgs& args, const EventSink& sink,
                           const TrainerHooks& hooks) {
  try {
    RankTrainer trainer(spec, args, sink, hooks);
    return trainer.Run();
  } catch (const c10::Error& e) {
    return absl::InternalError(strings::Cat("rank ", args.rank, ": libtorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(strings::Cat("rank ", args.rank, ": ", e.what()));
  }
}

absl::Status Train(const WorkerArgs& args, const EventSink& sink, const TrainerHooks& hooks) {
  ASSIGN_OR_RETURN(const v1::RunSpec spec, ReadRunSpec(args.run_dir));
  return TrainWithSpec(spec, args, sink, hooks);
}

}  // namespace distill::trainer
