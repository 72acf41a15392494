#include "services/coordinator/pipeline/pipeline.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/artifacts/artifacts.h"
#include "common/clock/timestamp.h"
#include "common/config/proto_yaml.h"
#include "common/dataset/example_json.h"
#include "common/logging/logging.h"
#include "common/rpc/status.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"
#include "services/coordinator/pipeline/dataset_loader.h"
#include "services/curator/answers/normalizer.h"

namespace distill::coordinator {
namespace {

constexpr absl::Duration kProgressEvery = absl::Milliseconds(250);
// Test examples travel to the teacher beside the training examples, under ids that cannot collide with
// theirs (a given split's two files may both number their rows from 1).
constexpr std::string_view kTestIdPrefix = "test:";

v1::StageStatus& StageOf(v1::Job& job, v1::Stage stage) { return *job.mutable_stages(stage - 1); }
const v1::StageStatus& StageOf(const v1::Job& job, v1::Stage stage) { return job.stages(stage - 1); }

std::string StageName(v1::Stage stage) {
  std::string name = v1::Stage_Name(stage);
  return name.substr(std::string_view("STAGE_").size());
}


// Rate-limits progress saves: Due() is true at most once per kProgressEvery.
class Throttle {
 public:
  bool Due() {
    const absl::Time now = absl::Now();
    if (now - last_ < kProgressEvery) return false;
    last_ = now;
    return true;
  }

 private:
  absl::Time last_ = absl::InfinitePast();
};

// Everything a stage function works with.
struct StageContext {
  JobExecution& exec;
  const PipelineEnv& env;
  const v1::JobSpec spec;
  const std::string job_id;
  const v1::Stage stage;

  const ServiceClients& clients() const { return *env.clients; }

  // Changes this stage's status (and anything else in the job), saved at once.
  absl::Status Update(const std::function<void(v1::Job&, v1::StageStatus&)>& mutate) {
    return exec.Update([&](v1::Job& job) { mutate(job, StageOf(job, stage)); });
  }

  // "artifact://jobs/<id>/<relative>".
  std::string Uri(std::string_view relative) const { return strings::Cat("artifact://jobs/", job_id, "/", relative); }
  absl::StatusOr<std::string> Local(const std::string& uri) const {
    return artifacts::ResolveUri(env.artifact_root, uri, "artifact");
  }

  // Sleeps up to `d`, returning early when the job is being stopped.
  void Sleep(absl::Duration d) const {
    const absl::Time until = absl::Now() + d;
    while (!exec.stopping() && absl::Now() < until) {
      absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
    }
  }
};

absl::Status StoppedError() { return absl::CancelledError("stopped"); }

// Writes `lines` to `path` (creating its directory) through a temporary file and a rename, so a crash
// never leaves half a file under the final name.
absl::Status WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return absl::FailedPreconditionError(strings::Cat("cannot create the directory of ", path, ": ", ec.message()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    for (const std::string& line : lines) out << line << '\n';
    out.flush();
    if (!out) return absl::FailedPreconditionError(strings::Cat("cannot write ", tmp));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::FailedPreconditionError(strings::Cat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

template <typename Message>
absl::StatusOr<Message> ParseJsonLine(std::string_view line, const std::string& path, int number) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &message, options).ok()) {
    return absl::DataLossError(strings::Cat(path, ":", number, ": not a ", Message::descriptor()->name()));
  }
  return message;
}

// Reads a JSON-lines file of `Message`. With `repair_tail`, a last line cut short by a crash (no final
// newline, or not parseable) is removed from the file instead of failing: it is re-requested.
template <typename Message>
absl::StatusOr<std::vector<Message>> ReadJsonLines(const std::string& path, bool repair_tail) {
  std::vector<Message> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return out;
    return absl::FailedPreconditionError(strings::Cat("cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  size_t good_bytes = 0;
  size_t pos = 0;
  int number = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    ++number;
    const bool complete = end != std::string::npos;
    std::string_view line(text.data() + pos, (complete ? end : text.size()) - pos);
    absl::StatusOr<Message> message = ParseJsonLine<Message>(line, path, number);
    if (!complete || !message.ok()) {
      if (repair_tail && (!complete || end + 1 == text.size())) break;
      if (!message.ok()) return message.status();
    }
    out.push_back(*std::move(message));
    if (!complete) break;
    pos = end + 1;
    good_bytes = pos;
  }
  if (repair_tail && good_bytes < text.size()) {
    logging::Warning("dropping a partly written last line", {{"file", path}});
    std::filesystem::resize_file(path, good_bytes);
  }
  return out;
}

absl::StatusOr<std::vector<v1::Example>> ReadExamples(const StageContext& ctx, std::string_view relative) {
  ASSIGN_OR_RETURN(std::string path, ctx.Local(ctx.Uri(relative)));
  return ReadJsonLines<v1::Example>(path, /*repair_tail=*/false);
}

std::vector<std::string> ToJsonLines(const std::vector<v1::Example>& examples) {
  std::vector<std::string> lines;
  lines.reserve(examples.size());
  for (const v1::Example& example : examples) lines.push_back(dataset::ProtoToJson(example));
  return lines;
}

v1::ArtifactRef Ref(const std::string& uri) {
  v1::ArtifactRef ref;
  ref.set_uri(uri);
  return ref;
}

// A failure of a call to another service: "<what>: <message>", keeping its code.
absl::Status CallError(std::string_view what, const grpc::Status& status) {
  absl::Status s = rpc::FromGrpcStatus(status);
  return absl::Status(s.code(), strings::Cat(what, ": ", s.message()));
}

bool Retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// ---------------------------------------------------------------------------------------------------
// LOAD_DATASET

absl::Status LoadDatasetStage(StageContext& ctx) {
  ASSIGN_OR_RETURN(SplitDataset data, LoadDataset(ctx.spec.dataset(), ctx.env.artifact_root));
  v1::LoadDatasetDetails details;
  auto write = [&](std::string_view name, const std::vector<v1::Example>& examples,
                   v1::ArtifactRef* ref) -> absl::Status {
    const std::string uri = ctx.Uri(strings::Cat("data/", name));
    ASSIGN_OR_RETURN(std::string path, ctx.Local(uri));
    RETURN_IF_ERROR(WriteLines(path, ToJsonLines(examples)));
    *ref = Ref(uri);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(write("train.jsonl", data.train, details.mutable_train_examples()));
  if (!data.validation.empty()) {
    RETURN_IF_ERROR(write("validation.jsonl", data.validation, details.mutable_validation_examples()));
  }
  RETURN_IF_ERROR(write("test.jsonl", data.test, details.mutable_test_examples()));
  details.set_train_count(static_cast<int64_t>(data.train.size()));
  details.set_validation_count(static_cast<int64_t>(data.validation.size()));
  details.set_test_count(static_cast<int64_t>(data.test.size()));
  return ctx.Update([&](v1::Job&, v1::StageStatus& s) {
    s.set_done(data.rows_read);
    s.set_total(data.rows_read);
    s.set_message(strings::Cat(data.train.size(), " train, ", data.validation.size(), " validation, ",
                               data.test.size(), " test examples"));
    *s.mutable_load_dataset() = details;
  });
}

// ---------------------------------------------------------------------------------------------------
// TEACH

// What the teacher has answered so far, read back from the stage's files.
struct TeachState {
  std::map<std::string, std::map<int, v1::TeacherSample>> samples;  // by example id, then sample index
  std::map<std::string, v1::ExampleError> errors;                    // terminal errors by example id
};

void AddUsage(const v1::Usage& add, v1::Usage* total) {
  total->set_prompt_tokens(total->prompt_tokens() + add.prompt_tokens());
  total->set_completion_tokens(total->completion_tokens() + add.completion_tokens());
  total->set_cost_usd(total->cost_usd() + add.cost_usd());
}

// Teach counters recomputed from what is on disk, so they are exact after a crash too.
void CountTeach(const TeachState& state, const std::vector<v1::Example>& examples, int n, v1::TeachDetails* d) {
  int64_t completed = 0, failed = 0, received = 0, cached = 0;
  v1::Usage usage;
  std::map<v1::ExampleErrorReason, int64_t> reasons;
  for (const v1::Example& example : examples) {
    auto it = state.samples.find(example.id());
    const int have = it == state.samples.end() ? 0 : static_cast<int>(it->second.size());
    if (have >= n) {
      ++completed;
    } else if (auto e = state.errors.find(example.id()); e != state.errors.end()) {
      ++failed;
      ++reasons[e->second.reason()];
    }
    if (it == state.samples.end()) continue;
    for (const auto& [index, sample] : it->second) {
      ++received;
      if (sample.from_cache()) {
        ++cached;
      } else {
        AddUsage(sample.usage(), &usage);
      }
    }
  }
  d->set_examples_total(static_cast<int64_t>(examples.size()));
  d->set_examples_completed(completed);
  d->set_examples_failed(failed);
  d->clear_errors_by_reason();
  for (const auto& [reason, count] : reasons) {
    v1::ExampleErrorCount* c = d->add_errors_by_reason();
    c->set_reason(reason);
    c->set_count(count);
  }
  d->set_samples_received(received);
  d->set_samples_from_cache(cached);
  *d->mutable_usage() = usage;
}

absl::Status TeachStage(StageContext& ctx) {
  if (!NeedsTeacher(ctx.spec)) {
    return ctx.Update([](v1::Job&, v1::StageStatus& s) {
      s.set_state(v1::STAGE_STATE_SKIPPED);
      s.set_message("every student trains on gold labels only");
    });
  }
  ASSIGN_OR_RETURN(std::vector<v1::Example> train, ReadExamples(ctx, "data/train.jsonl"));
  std::vector<v1::Example> examples = train;
  std::vector<v1::Example> test;
  if (!ctx.spec.evaluation().skip_teacher_eval()) {
    ASSIGN_OR_RETURN(test, ReadExamples(ctx, "data/test.jsonl"));
    for (v1::Example example : test) {
      example.set_id(strings::Cat(kTestIdPrefix, example.id()));
      examples.push_back(std::move(example));
    }
  }
  const int n = ctx.spec.teacher().samples_per_example();
  const std::string samples_uri = ctx.Uri("teach/samples.jsonl");
  ASSIGN_OR_RETURN(const std::string samples_path, ctx.Local(samples_uri));
  ASSIGN_OR_RETURN(const std::string errors_path, ctx.Local(ctx.Uri("teach/errors.jsonl")));
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(samples_path).parent_path(), ec);

  TeachState state;
  {
    ASSIGN_OR_RETURN(std::vector<v1::TeacherSample> samples,
                     ReadJsonLines<v1::TeacherSample>(samples_path, /*repair_tail=*/true));
    // A re-sent example may bring samples again (from the cache): the first copy counts.
    for (v1::TeacherSample& sample : samples) state.samples[sample.example_id()].emplace(sample.sample_index(), sample);
    ASSIGN_OR_RETURN(std::vector<v1::ExampleError> errors,
                     ReadJsonLines<v1::ExampleError>(errors_path, /*repair_tail=*/true));
    for (v1::ExampleError& error : errors) state.errors.emplace(error.example_id(), error);
  }
  const absl::Time started = absl::Now();
  absl::Time unavailable_since = absl::InfinitePast();
  absl::Time idle_since = absl::InfinitePast();
  while (true) {
    std::vector<const v1::Example*> pending;
    for (const v1::Example& example : examples) {
      auto it = state.samples.find(example.id());
      const int have = it == state.samples.end() ? 0 : static_cast<int>(it->second.size());
      if (have < n && !state.errors.count(example.id())) pending.push_back(&example);
    }
    const int64_t pending_at_start = static_cast<int64_t>(pending.size());
    v1::TeachDetails details;
    CountTeach(state, examples, n, &details);
    RETURN_IF_ERROR(ctx.Update([&](v1::Job&, v1::StageStatus& s) {
      s.set_total(details.examples_total());
      s.set_done(details.examples_completed() + details.examples_failed());
      s.set_message(pending.empty() ? "every example answered"
                                    : strings::Cat("asking the teacher about ", pending.size(), " examples"));
      *s.mutable_teach() = details;
    }));
    if (pending.empty()) break;
    if (ctx.exec.stopping()) return StoppedError();

    v1::GenerateRationalesRequest first;
    *first.mutable_config()->mutable_task() = ctx.spec.task();
    *first.mutable_config()->mutable_options() = ctx.spec.teacher();
    if (ctx.spec.teacher().budget_usd() > 0) {
      // The cap is for the whole job: what earlier attempts spent is gone.
      const double left = ctx.spec.teacher().budget_usd() - details.usage().cost_usd();
      first.mutable_config()->mutable_options()->set_budget_usd(std::max(left, 1e-12));
    }
    grpc::ClientContext call;
    ctx.clients().Prepare(&call, absl::InfiniteDuration());
    JobExecution::HookRegistration hook = ctx.exec.OnStop([&call] { call.TryCancel(); });
    std::unique_ptr<grpc::ClientReaderWriterInterface<v1::GenerateRationalesRequest, v1::GenerateRationalesResponse>>
        stream = ctx.clients().teacher->GenerateRationales(&call);
    // Examples go out on their own thread: gRPC flow control may block a write until responses are read.
    std::thread writer([&] {
      if (!stream->Write(first)) return;
      for (const v1::Example* example : pending) {
        v1::GenerateRationalesRequest request;
        *request.mutable_example() = *example;
        if (!stream->Write(request)) return;
      }
      stream->WritesDone();
    });
    std::ofstream samples_out(samples_path, std::ios::app | std::ios::binary);
    std::ofstream errors_out(errors_path, std::ios::app | std::ios::binary);
    Throttle throttle;
    int64_t finished_now = 0;
    v1::GenerateRationalesResponse response;
    absl::Status write_error;
    while (stream->Read(&response)) {
      if (response.has_sample()) {
        const v1::TeacherSample& sample = response.sample();
        // Flushed line by line: a sample the coordinator has been told about is on disk before the next.
        samples_out << dataset::ProtoToJson(sample) << '\n';
        samples_out.flush();
        auto& have = state.samples[sample.example_id()];
        have.emplace(sample.sample_index(), sample);
        if (static_cast<int>(have.size()) == n) ++finished_now;
      } else if (response.has_error()) {
        // A cancelled example has no result yet: it is asked again when the job resumes.
        if (response.error().reason() != v1::EXAMPLE_ERROR_REASON_CANCELLED) {
          errors_out << dataset::ProtoToJson(response.error()) << '\n';
          errors_out.flush();
          state.errors.emplace(response.error().example_id(), response.error());
          ++finished_now;
        }
      }
      if (!samples_out || !errors_out) {
        write_error = absl::FailedPreconditionError(strings::Cat("cannot append to ", samples_path));
        call.TryCancel();
        break;
      }
      if (throttle.Due()) {
        CountTeach(state, examples, n, &details);
        const double elapsed = absl::ToDoubleSeconds(absl::Now() - started);
        const int64_t left = pending_at_start - finished_now;
        const double eta = finished_now > 0 ? elapsed / static_cast<double>(finished_now) * static_cast<double>(left) : 0;
        RETURN_IF_ERROR(ctx.Update([&](v1::Job&, v1::StageStatus& s) {
          s.set_done(details.examples_completed() + details.examples_failed());
          s.set_eta_seconds(eta);
          s.set_message(strings::Cat(details.samples_received(), " samples received (", details.samples_from_cache(),
                                     " from cache), $", details.usage().cost_usd()));
          *s.mutable_teach() = details;
        }));
      }
    }
    writer.join();
    const grpc::Status status = stream->Finish();
    if (!write_error.ok()) return write_error;
    if (ctx.exec.stopping()) return StoppedError();
    if (!status.ok()) {
      if (!Retryable(status)) return CallError("teacher gateway", status);
      if (unavailable_since == absl::InfinitePast()) unavailable_since = absl::Now();
      if (absl::Now() - unavailable_since > ctx.env.unavailable_patience) {
        return CallError("teacher gateway (gave up retrying)", status);
      }
      logging::Warning("teacher gateway unavailable, retrying", {{"job", ctx.job_id}, {"error", status.error_message()}});
      ctx.Sleep(absl::Seconds(1));
      continue;
    }
    unavailable_since = absl::InfinitePast();
    // The stream ended normally: every example it carried has a result, or the loop sends it again. A
    // gateway that keeps ending streams without answering (it is shutting down: its examples come back
    // cancelled) is waited for, within the same patience as one that is down.
    if (finished_now == 0) {
      if (idle_since == absl::InfinitePast()) idle_since = absl::Now();
      if (absl::Now() - idle_since > ctx.env.unavailable_patience) {
        return absl::UnavailableError(strings::Cat("teacher gateway: streams end without answering ",
                                                   pending.size(), " examples"));
      }
      ctx.Sleep(absl::Seconds(1));
    } else {
      idle_since = absl::InfinitePast();
    }
  }

  // The curator's input: every training example with its samples (none for one the teacher failed on).
  std::vector<std::string> lines;
  for (const v1::Example& example : train) {
    v1::CurationInput input;
    *input.mutable_example() = example;
    if (auto it = state.samples.find(example.id()); it != state.samples.end()) {
      for (const auto& [index, sample] : it->second) *input.add_samples() = sample;
    }
    lines.push_back(dataset::ProtoToJson(input));
  }
  ASSIGN_OR_RETURN(std::string inputs_path, ctx.Local(ctx.Uri("teach/curation_input.jsonl")));
  RETURN_IF_ERROR(WriteLines(inputs_path, lines));

  // The teacher's test accuracy: its sample 0 against gold, with the curator's normaliser.
  std::optional<double> teacher_accuracy;
  if (!test.empty()) {
    ASSIGN_OR_RETURN(curator::AnswerNormalizer normalizer, curator::AnswerNormalizer::Create(ctx.spec.task()));
    int64_t with_gold = 0, correct = 0;
    for (const v1::Example& example : test) {
      if (!example.has_gold()) continue;
      absl::StatusOr<curator::NormalizedAnswer> gold = normalizer.NormalizeGold(example);
      if (!gold.ok()) continue;
      ++with_gold;
      auto it = state.samples.find(strings::Cat(kTestIdPrefix, example.id()));
      if (it == state.samples.end() || !it->second.count(0)) continue;
      absl::StatusOr<curator::NormalizedAnswer> answer = normalizer.Normalize(example, it->second.at(0).answer());
      if (answer.ok() && normalizer.Matches(*answer, *gold)) ++correct;
    }
    if (with_gold > 0) teacher_accuracy = static_cast<double>(correct) / static_cast<double>(with_gold);
  }
  v1::TeachDetails details;
  CountTeach(state, examples, n, &details);
  *details.mutable_samples() = Ref(samples_uri);
  return ctx.Update([&](v1::Job& job, v1::StageStatus& s) {
    *s.mutable_teach() = details;
    s.set_done(details.examples_total());
    s.set_message(strings::Cat(details.examples_completed(), " examples answered, ", details.examples_failed(),
                               " failed; ", details.samples_received(), " samples (", details.samples_from_cache(),
                               " from cache)"));
    *job.mutable_report()->mutable_teacher_usage() = details.usage();
    if (teacher_accuracy) job.mutable_report()->set_teacher_test_accuracy(*teacher_accuracy);
  });
}

// ---------------------------------------------------------------------------------------------------
// CURATE

absl::StatusOr<v1::CurationSummary> ReadSummary(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  v1::CurationSummary summary;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!in || !google::protobuf::util::JsonStringToMessage(buffer.str(), &summary, options).ok()) {
    return absl::DataLossError(strings::Cat("cannot read the curation summary ", path));
  }
  return summary;
}

std::string DropsText(const v1::CurationSummary& summary) {
  std::vector<std::string> parts;
  for (const v1::DropCount& drop : summary.dropped_by_reason()) {
    parts.push_back(strings::Cat(config::ShortName(drop.reason()), " ", drop.count()));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

absl::Status CurateStage(StageContext& ctx) {
  const std::string input_uri = ctx.Uri("teach/curation_input.jsonl");
  ASSIGN_OR_RETURN(const std::string input_path, ctx.Local(input_uri));
  if (!std::filesystem::exists(input_path)) {
    // No teacher stage: gold-only students curate the bare examples.
    ASSIGN_OR_RETURN(std::vector<v1::Example> train, ReadExamples(ctx, "data/train.jsonl"));
    std::vector<std::string> lines;
    for (const v1::Example& example : train) {
      v1::CurationInput input;
      *input.mutable_example() = example;
      lines.push_back(dataset::ProtoToJson(input));
    }
    RETURN_IF_ERROR(WriteLines(input_path, lines));
  }
  // One dataset per distinct (format, label source), in the order the students first need them.
  std::vector<v1::CuratedDataset> datasets;
  for (const StudentPlan& plan : PlanStudents(ctx.spec)) {
    auto it = std::find_if(datasets.begin(), datasets.end(), [&](const v1::CuratedDataset& d) {
      return d.format() == plan.format && d.label_source() == plan.label_source;
    });
    if (it == datasets.end()) {
      v1::CuratedDataset dataset;
      dataset.set_format(plan.format);
      dataset.set_label_source(plan.label_source);
      datasets.push_back(dataset);
      it = datasets.end() - 1;
    }
    it->add_students(plan.name);
  }
  int64_t examples_done = 0;
  for (size_t i = 0; i < datasets.size(); ++i) {
    v1::CuratedDataset& dataset = datasets[i];
    const std::string name = strings::Cat(config::ShortName(dataset.format()), "-", config::ShortName(dataset.label_source()));
    const std::string out_uri = ctx.Uri(strings::Cat("curate/", name, "/"));
    ASSIGN_OR_RETURN(const std::string out_dir, ctx.Local(out_uri));
    RETURN_IF_ERROR(ctx.Update([&](v1::Job&, v1::StageStatus& s) {
      s.set_message(strings::Cat("curating ", name, " for ", absl::StrJoin(dataset.students(), ", ")));
    }));
    const std::filesystem::path dir(out_dir);
    if (std::filesystem::exists(dir / "manifest.json")) {
      // Finished before a restart: manifest.json is the curator's last write.
      ASSIGN_OR_RETURN(*dataset.mutable_summary(), ReadSummary((dir / "summary.json").string()));
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      v1::CurateDatasetRequest request;
      *request.mutable_input() = Ref(input_uri);
      *request.mutable_task() = ctx.spec.task();
      *request.mutable_options() = ctx.spec.curation();
      request.mutable_options()->set_format(dataset.format());
      request.mutable_options()->set_label_source(dataset.label_source());
      request.set_output_uri(out_uri);
      v1::CurateDatasetResponse response;
      grpc::Status status;
      for (absl::Time since = absl::Now();;) {
        grpc::ClientContext call;
        ctx.clients().Prepare(&call, absl::InfiniteDuration());
        JobExecution::HookRegistration hook = ctx.exec.OnStop([&call] { call.TryCancel(); });
        status = ctx.clients().curator->CurateDataset(&call, request, &response);
        if (ctx.exec.stopping()) return StoppedError();
        if (status.ok() || !Retryable(status) || absl::Now() - since > ctx.env.unavailable_patience) break;
        ctx.Sleep(absl::Seconds(1));
      }
      if (!status.ok()) return CallError(strings::Cat("curator (", name, ")"), status);
      *dataset.mutable_summary() = response.summary();
    }
    *dataset.mutable_records() = Ref(strings::Cat(out_uri, "records.jsonl"));
    if (dataset.summary().kept() == 0) {
      return absl::FailedPreconditionError(strings::Cat(name, ": no training records kept out of ",
                                                        dataset.summary().received(), " (dropped: ",
                                                        DropsText(dataset.summary()), ")"));
    }
    examples_done += dataset.summary().examples_received();
    RETURN_IF_ERROR(ctx.Update([&](v1::Job& job, v1::StageStatus& s) {
      s.set_done(examples_done);
      v1::CurateDetails* details = s.mutable_curate();
      details->clear_datasets();
      for (size_t j = 0; j <= i; ++j) *details->add_datasets() = datasets[j];
      if (i == 0) *job.mutable_report()->mutable_curation() = dataset.summary();
      if (dataset.summary().examples_with_gold() > 0 && job.report().teacher_train_accuracy() == 0 &&
          dataset.label_source() != v1::LABEL_SOURCE_GOLD_ONLY) {
        job.mutable_report()->set_teacher_train_accuracy(dataset.summary().teacher_accuracy());
      }
    }));
  }
  return ctx.Update([&](v1::Job&, v1::StageStatus& s) {
    s.set_total(examples_done);
    const v1::CurationSummary& primary = datasets[0].summary();
    s.set_message(strings::Cat(datasets.size(), " dataset(s); primary kept ", primary.kept(), " of ", primary.received(),
                               ", dropped: ", DropsText(primary)));
  });
}

// ---------------------------------------------------------------------------------------------------
// TRAIN

double TotalLoss(const v1::Run& run) {
  for (const v1::TaskLoss& loss : run.progress().losses()) {
    if (loss.task() == v1::LOSS_TASK_TOTAL) return loss.loss();
  }
  return run.progress().losses().empty() ? 0 : run.progress().losses(0).loss();
}

bool RunTerminal(v1::RunState state) {
  return state == v1::RUN_STATE_SUCCEEDED || state == v1::RUN_STATE_FAILED || state == v1::RUN_STATE_CANCELLED;
}

void SetRuns(const std::vector<StudentPlan>& plans, const std::vector<v1::Run>& runs, v1::TrainDetails* details) {
  details->clear_runs();
  for (size_t i = 0; i < plans.size(); ++i) {
    v1::StudentRun* student = details->add_runs();
    student->set_student(plans[i].name);
    *student->mutable_run() = runs[i];
  }
}

absl::Status TrainStage(StageContext& ctx) {
  const std::vector<StudentPlan> plans = PlanStudents(ctx.spec);
  const v1::Job at_start = ctx.exec.Snapshot();
  const v1::CurateDetails& curated = StageOf(at_start, v1::STAGE_CURATE).curate();
  const v1::LoadDatasetDetails& data = StageOf(at_start, v1::STAGE_LOAD_DATASET).load_dataset();
  std::vector<v1::StartRunRequest> requests;
  for (const StudentPlan& plan : plans) {
    v1::StartRunRequest request;
    request.set_client_request_id(strings::Cat(ctx.job_id, "/", plan.name));
    v1::RunSpec& spec = *request.mutable_spec();
    spec.set_name(strings::Cat(ctx.spec.name(), "-", plan.name));
    for (const v1::CuratedDataset& dataset : curated.datasets()) {
      if (std::find(dataset.students().begin(), dataset.students().end(), plan.name) != dataset.students().end()) {
        *spec.mutable_dataset() = dataset.records();
      }
    }
    *spec.mutable_task() = ctx.spec.task();
    *spec.mutable_student() = ctx.spec.student();
    *spec.mutable_training() = ctx.spec.training();
    spec.mutable_training()->set_objective(plan.objective);
    spec.mutable_training()->clear_alpha();
    if (plan.alpha) spec.mutable_training()->set_alpha(*plan.alpha);
    if (data.has_validation_examples()) *spec.mutable_eval()->mutable_examples() = data.validation_examples();
    spec.set_output_uri(ctx.Uri(strings::Cat("train/", plan.name, "/")));
    requests.push_back(std::move(request));
  }
  std::vector<v1::Run> runs(plans.size());
  // Runs the trainer reported, from the saved state: after a restart they are asked for first.
  for (const v1::StudentRun& saved : StageOf(at_start, v1::STAGE_TRAIN).train().runs()) {
    for (size_t i = 0; i < plans.size(); ++i) {
      if (saved.student() == plans[i].name) runs[i] = saved.run();
    }
  }
  Throttle throttle;
  absl::Time unavailable_since = absl::InfinitePast();
  while (true) {
    if (ctx.exec.stopping()) return StoppedError();
    grpc::Status trouble;
    for (size_t i = 0; i < plans.size(); ++i) {
      if (RunTerminal(runs[i].state())) continue;
      grpc::Status status;
      if (!runs[i].run_id().empty()) {
        v1::GetRunRequest get;
        get.set_run_id(runs[i].run_id());
        v1::GetRunResponse got;
        grpc::ClientContext call;
        ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
        status = ctx.clients().trainer->GetRun(&call, get, &got);
        if (status.ok()) runs[i] = got.run();
      }
      // Unknown to the trainer (it restarted): the same request id and output directory resume the run
      // from its last checkpoint.
      if (runs[i].run_id().empty() || status.error_code() == grpc::StatusCode::NOT_FOUND) {
        v1::StartRunResponse started;
        grpc::ClientContext call;
        ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
        status = ctx.clients().trainer->StartRun(&call, requests[i], &started);
        if (status.ok()) runs[i] = started.run();
      }
      if (!status.ok()) {
        if (!Retryable(status)) return CallError(strings::Cat("trainer (", plans[i].name, ")"), status);
        trouble = status;
      }
    }
    if (!trouble.ok()) {
      if (unavailable_since == absl::InfinitePast()) unavailable_since = absl::Now();
      if (absl::Now() - unavailable_since > ctx.env.unavailable_patience) {
        return CallError("trainer (gave up retrying)", trouble);
      }
    } else {
      unavailable_since = absl::InfinitePast();
    }
    bool all_done = true;
    for (size_t i = 0; i < plans.size(); ++i) {
      const v1::Run& run = runs[i];
      if (run.state() == v1::RUN_STATE_FAILED || run.state() == v1::RUN_STATE_CANCELLED) {
        const absl::StatusCode code = run.failure_code() != 0 ? static_cast<absl::StatusCode>(run.failure_code())
                                                              : absl::StatusCode::kAborted;
        // Saved first, so the job shows the run that failed.
        (void)ctx.Update([&](v1::Job&, v1::StageStatus& s) { SetRuns(plans, runs, s.mutable_train()); });
        return absl::Status(code, strings::Cat(plans[i].name, ": run ", run.run_id(), " ",
                                               run.state() == v1::RUN_STATE_FAILED ? "failed" : "was cancelled", ": ",
                                               run.failure_cause()));
      }
      all_done = all_done && run.state() == v1::RUN_STATE_SUCCEEDED;
    }
    if (all_done || throttle.Due()) {
      int64_t done = 0, total = 0;
      double eta = 0;
      std::vector<std::string> parts;
      for (size_t i = 0; i < plans.size(); ++i) {
        const v1::Run& run = runs[i];
        const int64_t run_total = run.progress().total_steps() > 0
                                      ? run.progress().total_steps()
                                      : ctx.spec.training().hyperparameters().max_steps();
        done += run.state() == v1::RUN_STATE_SUCCEEDED ? std::max(run_total, run.progress().step()) : run.progress().step();
        total += std::max(run_total, run.progress().step());
        if (!RunTerminal(run.state())) eta += run.progress().eta_seconds();
        std::string part = strings::Cat(plans[i].name, " ", config::ShortName(run.state()));
        if (run.has_progress()) {
          strings::Append(&part, " step ", run.progress().step(), "/", run.progress().total_steps(), " loss ",
                          absl::StrFormat("%.3f", TotalLoss(run)));
        }
        if (run.has_best_eval()) strings::Append(&part, absl::StrFormat(" val acc %.3f", run.best_eval().accuracy()));
        parts.push_back(part);
      }
      RETURN_IF_ERROR(ctx.Update([&](v1::Job&, v1::StageStatus& s) {
        s.set_done(done);
        s.set_total(total);
        s.set_eta_seconds(all_done ? 0 : eta);
        s.set_message(absl::StrJoin(parts, "; "));
        SetRuns(plans, runs, s.mutable_train());
      }));
    }
    if (all_done) return absl::OkStatus();
    ctx.Sleep(ctx.env.poll_interval);
  }
}

// ---------------------------------------------------------------------------------------------------
// EVALUATE

// The inference name a student is evaluated under, unique to the job and the student.
std::string EvalModelName(const std::string& job_id, size_t index) {
  return absl::AsciiStrToLower(strings::Cat("eval.", job_id, ".", index));
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

absl::Status Unload(const StageContext& ctx, const std::string& name) {
  v1::UnloadModelRequest request;
  request.set_name(name);
  v1::UnloadModelResponse response;
  grpc::ClientContext call;
  ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
  const grpc::Status status = ctx.clients().inference->UnloadModel(&call, request, &response);
  if (status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
  return CallError("inference UnloadModel", status);
}

absl::Status EvaluateStage(StageContext& ctx) {
  const std::vector<StudentPlan> plans = PlanStudents(ctx.spec);
  ASSIGN_OR_RETURN(std::vector<v1::Example> test, ReadExamples(ctx, "data/test.jsonl"));
  if (ctx.spec.evaluation().max_examples() > 0 &&
      static_cast<int64_t>(test.size()) > ctx.spec.evaluation().max_examples()) {
    test.resize(static_cast<size_t>(ctx.spec.evaluation().max_examples()));
  }
  ASSIGN_OR_RETURN(curator::AnswerNormalizer normalizer, curator::AnswerNormalizer::Create(ctx.spec.task()));
  // Every student is checked against the same gold answers: normalised once.
  std::vector<absl::StatusOr<curator::NormalizedAnswer>> golds;
  golds.reserve(test.size());
  for (const v1::Example& example : test) {
    golds.push_back(example.has_gold() ? normalizer.NormalizeGold(example)
                                       : absl::StatusOr<curator::NormalizedAnswer>(absl::NotFoundError("no gold")));
  }
  const v1::Job at_start = ctx.exec.Snapshot();
  const v1::TrainDetails& trained = at_start.stages(v1::STAGE_TRAIN - 1).train();
  const int64_t total = static_cast<int64_t>(test.size() * plans.size());
  std::vector<v1::StudentResult> results;
  RETURN_IF_ERROR(ctx.Update([&](v1::Job& job, v1::StageStatus& s) {
    s.set_total(total);
    s.mutable_evaluate()->set_examples_total(static_cast<int64_t>(test.size()));
    s.mutable_evaluate()->clear_students();
    if (job.report().has_teacher_test_accuracy()) {
      s.mutable_evaluate()->set_teacher_accuracy(job.report().teacher_test_accuracy());
    }
  }));
  Throttle throttle;
  for (size_t i = 0; i < plans.size(); ++i) {
    const v1::Run* run = nullptr;
    for (const v1::StudentRun& r : trained.runs()) {
      if (r.student() == plans[i].name) run = &r.run();
    }
    if (run == nullptr || !run->has_model()) {
      return absl::FailedPreconditionError(strings::Cat(plans[i].name, ": no trained model"));
    }
    v1::StudentResult result;
    result.set_student(plans[i].name);
    result.set_objective(plans[i].objective);
    result.set_label_source(plans[i].label_source);
    *result.mutable_model() = run->model();
    result.set_run_id(run->run_id());
    if (absl::StatusOr<std::string> dir = ctx.Local(run->model().uri()); dir.ok()) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(std::filesystem::path(*dir) / "model.safetensors", ec);
      if (!ec) result.set_size_bytes(static_cast<int64_t>(size));
    }
    const std::string name = EvalModelName(ctx.job_id, i);
    RETURN_IF_ERROR(Unload(ctx, name));
    {
      v1::LoadModelRequest load;
      load.set_name(name);
      load.set_version("eval");
      *load.mutable_artifact() = run->model();
      v1::LoadModelResponse loaded;
      grpc::ClientContext call;
      ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
      const grpc::Status status = ctx.clients().inference->LoadModel(&call, load, &loaded);
      if (!status.ok()) return CallError(strings::Cat("inference LoadModel (", plans[i].name, ")"), status);
      result.set_parameters(loaded.model().parameters());
    }
    std::vector<double> latencies;
    int64_t correct = 0;
    for (size_t e = 0; e < test.size(); ++e) {
      if (ctx.exec.stopping()) {
        (void)Unload(ctx, name);
        return StoppedError();
      }
      const v1::Example& example = test[e];
      v1::PredictRequest predict;
      predict.set_model(name);
      predict.set_input(example.input());
      *predict.mutable_choices() = example.choices();
      v1::PredictResponse answer;
      grpc::Status status;
      for (int attempt = 0;; ++attempt) {
        grpc::ClientContext call;
        ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
        const absl::Time t0 = absl::Now();
        status = ctx.clients().inference->Predict(&call, predict, &answer);
        if (status.ok()) latencies.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
        if (status.ok() || !Retryable(status) || attempt >= 5) break;
        ctx.Sleep(absl::Seconds(1));
      }
      // An input the model cannot take (too long) is an example it gets wrong, not a failed job.
      if (!status.ok() && status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
        (void)Unload(ctx, name);
        return CallError(strings::Cat("inference Predict (", plans[i].name, ", example ", example.id(), ")"), status);
      }
      if (status.ok() && golds[e].ok()) {
        absl::StatusOr<curator::NormalizedAnswer> got = normalizer.Normalize(example, answer.answer());
        if (got.ok() && normalizer.Matches(*got, *golds[e])) ++correct;
      }
      result.set_examples(static_cast<int64_t>(e + 1));
      result.set_correct(correct);
      if (throttle.Due() || e + 1 == test.size()) {
        result.set_test_accuracy(static_cast<double>(correct) / static_cast<double>(e + 1));
        double sum = 0;
        for (double l : latencies) sum += l;
        result.set_mean_latency_seconds(latencies.empty() ? 0 : sum / static_cast<double>(latencies.size()));
        result.set_p99_latency_seconds(Percentile(latencies, 0.99));
        const int64_t done = static_cast<int64_t>(i * test.size() + e + 1);
        RETURN_IF_ERROR(ctx.Update([&](v1::Job&, v1::StageStatus& s) {
          s.set_done(done);
          s.set_message(strings::Cat("evaluating ", plans[i].name, ": ", e + 1, "/", test.size(),
                                     absl::StrFormat(", accuracy %.3f", result.test_accuracy())));
          v1::EvaluateDetails* details = s.mutable_evaluate();
          details->clear_students();
          for (const v1::StudentResult& r : results) *details->add_students() = r;
          *details->add_students() = result;
        }));
      }
    }
    RETURN_IF_ERROR(Unload(ctx, name));
    results.push_back(result);
  }
  return ctx.Update([&](v1::Job& job, v1::StageStatus& s) {
    s.set_done(total);
    std::vector<std::string> parts;
    for (const v1::StudentResult& r : results) {
      parts.push_back(absl::StrFormat("%s %.1f%%", r.student(), 100 * r.test_accuracy()));
    }
    s.set_message(strings::Cat("test accuracy: ", absl::StrJoin(parts, ", ")));
    job.mutable_report()->clear_students();
    for (const v1::StudentResult& r : results) *job.mutable_report()->add_students() = r;
  });
}

// ---------------------------------------------------------------------------------------------------
// DEPLOY

absl::Status DeployStage(StageContext& ctx) {
  const v1::DeploySpec& deploy = ctx.spec.deploy();
  if (deploy.model_name().empty()) {
    return ctx.Update([](v1::Job& job, v1::StageStatus& s) {
      s.set_state(v1::STAGE_STATE_SKIPPED);
      s.set_message("no deploy.model_name: nothing to deploy");
      job.mutable_report()->set_verdict(v1::VERDICT_NOT_DEPLOYED);
      job.mutable_report()->set_verdict_message("the job has no deploy section");
    });
  }
  const v1::Job job = ctx.exec.Snapshot();
  if (job.report().students().empty()) return absl::FailedPreconditionError("no evaluated student to deploy");
  const v1::StudentResult& primary = job.report().students(0);
  v1::DeployDetails details;
  details.set_model_name(deploy.model_name());
  details.set_version(ctx.job_id);

  // The version served now, if any.
  {
    v1::ListModelsRequest request;
    request.set_name(deploy.model_name());
    v1::ListModelsResponse response;
    grpc::ClientContext call;
    ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
    const grpc::Status status = ctx.clients().inference->ListModels(&call, request, &response);
    if (!status.ok()) return CallError("inference ListModels", status);
    for (const v1::ModelInfo& model : response.models()) {
      if (model.active() && model.state() == v1::MODEL_STATE_READY) details.set_previous_version(model.version());
    }
  }
  const double accuracy = primary.test_accuracy();
  std::string reason;
  v1::Verdict verdict = v1::VERDICT_PROMOTED;
  if (details.previous_version() == ctx.job_id) {
    // Promoted before a restart.
    reason = "already the served version";
  } else {
    if (!details.previous_version().empty() && ctx.env.recorded_accuracy) {
      if (std::optional<double> previous = ctx.env.recorded_accuracy(details.previous_version())) {
        details.set_previous_accuracy(*previous);
      }
    }
    if (accuracy < deploy.min_accuracy()) {
      verdict = v1::VERDICT_BELOW_THRESHOLD;
      reason = absl::StrFormat("test accuracy %.3f < min_accuracy %.3f", accuracy, deploy.min_accuracy());
    } else if (details.has_previous_accuracy() && accuracy < details.previous_accuracy() && !deploy.allow_regression()) {
      verdict = v1::VERDICT_REGRESSION;
      reason = absl::StrFormat("test accuracy %.3f < served version %s's %.3f", accuracy, details.previous_version(),
                               details.previous_accuracy());
    } else {
      reason = absl::StrFormat("test accuracy %.3f >= min_accuracy %.3f", accuracy, deploy.min_accuracy());
      if (details.has_previous_accuracy()) {
        strings::Append(&reason, absl::StrFormat(" and %s served version %s's %.3f",
                                                 accuracy >= details.previous_accuracy() ? ">=" : "< (allowed)",
                                                 details.previous_version(), details.previous_accuracy()));
      } else if (!details.previous_version().empty()) {
        strings::Append(&reason, "; the served version ", details.previous_version(), " has no recorded accuracy");
      }
      v1::LoadModelRequest load;
      load.set_name(deploy.model_name());
      load.set_version(ctx.job_id);
      *load.mutable_artifact() = primary.model();
      v1::LoadModelResponse loaded;
      grpc::ClientContext call;
      ctx.clients().Prepare(&call, ctx.clients().rpc_timeout);
      const grpc::Status status = ctx.clients().inference->LoadModel(&call, load, &loaded);
      if (!status.ok()) return CallError("inference LoadModel", status);
    }
  }
  details.set_verdict(verdict);
  details.set_message(reason);
  return ctx.Update([&](v1::Job& j, v1::StageStatus& s) {
    s.set_done(verdict == v1::VERDICT_PROMOTED ? 1 : 0);
    s.set_total(1);
    s.set_message(strings::Cat(config::ShortName(verdict), ": ", reason));
    *s.mutable_deploy() = details;
    j.mutable_report()->set_verdict(verdict);
    j.mutable_report()->set_verdict_message(reason);
  });
}

absl::Status RunStage(StageContext& ctx) {
  switch (ctx.stage) {
    case v1::STAGE_LOAD_DATASET:
      return LoadDatasetStage(ctx);
    case v1::STAGE_TEACH:
      return TeachStage(ctx);
    case v1::STAGE_CURATE:
      return CurateStage(ctx);
    case v1::STAGE_TRAIN:
      return TrainStage(ctx);
    case v1::STAGE_EVALUATE:
      return EvaluateStage(ctx);
    case v1::STAGE_DEPLOY:
      return DeployStage(ctx);
    default:
      return absl::InternalError("unknown stage");
  }
}

// Releases what a cancelled job holds in other services: its training runs and evaluation models.
void ReleaseResources(const v1::Job& job, const PipelineEnv& env) {
  for (const v1::StudentRun& run : job.stages(v1::STAGE_TRAIN - 1).train().runs()) {
    if (run.run().run_id().empty() || RunTerminal(run.run().state())) continue;
    v1::CancelRunRequest request;
    request.set_run_id(run.run().run_id());
    v1::CancelRunResponse response;
    grpc::ClientContext call;
    env.clients->Prepare(&call, env.clients->rpc_timeout);
    const grpc::Status status = env.clients->trainer->CancelRun(&call, request, &response);
    if (!status.ok()) {
      logging::Warning("cannot cancel a training run", {{"job", job.job_id()}, {"run", run.run().run_id()},
                                                        {"error", status.error_message()}});
    }
  }
  for (size_t i = 0; i < static_cast<size_t>(job.stages(v1::STAGE_TRAIN - 1).train().runs_size()); ++i) {
    v1::UnloadModelRequest request;
    request.set_name(EvalModelName(job.job_id(), i));
    v1::UnloadModelResponse response;
    grpc::ClientContext call;
    env.clients->Prepare(&call, env.clients->rpc_timeout);
    (void)env.clients->inference->UnloadModel(&call, request, &response);
  }
}

void Finish(JobExecution& exec, v1::JobState state, v1::Stage stage, v1::StageState stage_state,
            const absl::Status& cause) {
  const absl::Time now = absl::Now();
  (void)exec.Update([&](v1::Job& job) {
    if (stage != v1::STAGE_UNSPECIFIED) {
      v1::StageStatus& s = StageOf(job, stage);
      s.set_state(stage_state);
      *s.mutable_end_time() = ToTimestamp(now);
      s.set_eta_seconds(0);
      if (!cause.ok()) {
        s.set_message(std::string(cause.message()));
        if (stage_state == v1::STAGE_STATE_FAILED) s.set_error_code(static_cast<int32_t>(cause.code()));
      }
    }
    job.set_state(state);
    *job.mutable_end_time() = ToTimestamp(now);
    if (!cause.ok()) {
      job.set_failure_cause(stage != v1::STAGE_UNSPECIFIED ? strings::Cat(StageName(stage), ": ", cause.message())
                                                           : std::string(cause.message()));
      if (state == v1::JOB_STATE_FAILED) job.set_failure_code(static_cast<int32_t>(cause.code()));
    }
    if (job.has_start_time()) {
      job.mutable_report()->set_duration_seconds(absl::ToDoubleSeconds(now - FromTimestamp(job.start_time())));
    }
  });
}

}  // namespace

void ServiceClients::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  if (!token.empty()) context->AddMetadata("authorization", strings::Cat("Bearer ", token));
  if (timeout != absl::InfiniteDuration()) context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

v1::OutputFormat FormatForObjective(v1::Objective objective) {
  switch (objective) {
    case v1::OBJECTIVE_STEP_BY_STEP:
      return v1::OUTPUT_FORMAT_STEP_BY_STEP;
    case v1::OBJECTIVE_COT_SEQUENCE:
      return v1::OUTPUT_FORMAT_COT_SEQUENCE;
    default:
      return v1::OUTPUT_FORMAT_LABEL_ONLY;
  }
}

std::vector<StudentPlan> PlanStudents(const v1::JobSpec& spec) {
  std::vector<StudentPlan> plans;
  StudentPlan primary;
  primary.name = "primary";
  primary.objective = spec.training().objective();
  if (spec.training().has_alpha()) primary.alpha = spec.training().alpha();
  primary.label_source = spec.curation().label_source();
  primary.format = spec.curation().format() != v1::OUTPUT_FORMAT_UNSPECIFIED ? spec.curation().format()
                                                                             : FormatForObjective(primary.objective);
  plans.push_back(primary);
  for (const v1::BaselineSpec& baseline : spec.baselines()) {
    StudentPlan plan;
    plan.name = baseline.name();
    plan.objective = baseline.objective();
    if (baseline.has_alpha()) {
      plan.alpha = baseline.alpha();
    } else if (baseline.objective() == v1::OBJECTIVE_STEP_BY_STEP && spec.training().has_alpha()) {
      plan.alpha = spec.training().alpha();
    }
    plan.label_source = baseline.label_source() != v1::LABEL_SOURCE_UNSPECIFIED ? baseline.label_source()
                                                                                : spec.curation().label_source();
    plan.format = FormatForObjective(plan.objective);
    plans.push_back(plan);
  }
  return plans;
}

bool NeedsTeacher(const v1::JobSpec& spec) {
  for (const StudentPlan& plan : PlanStudents(spec)) {
    if (plan.label_source != v1::LABEL_SOURCE_GOLD_ONLY) return true;
  }
  return false;
}

v1::Job NewJob(const std::string& job_id, const std::string& client_request_id, const v1::JobSpec& spec,
               absl::Time now) {
  v1::Job job;
  job.set_job_id(job_id);
  job.set_client_request_id(client_request_id);
  *job.mutable_spec() = spec;
  job.set_state(v1::JOB_STATE_QUEUED);
  *job.mutable_create_time() = ToTimestamp(now);
  for (int stage = v1::STAGE_LOAD_DATASET; stage <= v1::STAGE_DEPLOY; ++stage) {
    v1::StageStatus* s = job.add_stages();
    s->set_stage(static_cast<v1::Stage>(stage));
    s->set_state(v1::STAGE_STATE_PENDING);
  }
  return job;
}

void RunPipeline(JobExecution& exec, const PipelineEnv& env) {
  const v1::Job job = exec.Snapshot();
  if (job.state() == v1::JOB_STATE_CANCELLING) {
    ReleaseResources(job, env);
    v1::Stage running = v1::STAGE_UNSPECIFIED;
    for (const v1::StageStatus& s : job.stages()) {
      if (s.state() == v1::STAGE_STATE_RUNNING) running = s.stage();
    }
    Finish(exec, v1::JOB_STATE_CANCELLED, running, v1::STAGE_STATE_CANCELLED, absl::CancelledError("cancelled by client"));
    return;
  }
  if (IsTerminal(job.state())) return;
  (void)exec.Update([](v1::Job& j) {
    if (j.state() == v1::JOB_STATE_QUEUED) j.set_state(v1::JOB_STATE_RUNNING);
    if (!j.has_start_time()) *j.mutable_start_time() = ToTimestamp(absl::Now());
  });
  for (int index = v1::STAGE_LOAD_DATASET; index <= v1::STAGE_DEPLOY; ++index) {
    const v1::Stage stage = static_cast<v1::Stage>(index);
    const v1::StageState state = exec.Snapshot().stages(index - 1).state();
    if (state == v1::STAGE_STATE_SUCCEEDED || state == v1::STAGE_STATE_SKIPPED) continue;
    StageContext ctx{exec, env, job.spec(), job.job_id(), stage};
    absl::Status status = exec.Update([&](v1::Job& j) {
      j.set_current_stage(stage);
      v1::StageStatus& s = StageOf(j, stage);
      s.set_state(v1::STAGE_STATE_RUNNING);
      if (!s.has_start_time()) *s.mutable_start_time() = ToTimestamp(absl::Now());
    });
    if (status.ok() && !exec.stopping()) {
      logging::Info("stage started", {{"job", job.job_id()}, {"stage", StageName(stage)}});
      try {
        status = RunStage(ctx);
      } catch (const std::exception& e) {
        status = absl::InternalError(strings::Cat("unexpected exception: ", e.what()));
      }
    }
    if (exec.stop_reason() == StopReason::kShutdown) {
      logging::Info("job interrupted by shutdown; it resumes on restart", {{"job", job.job_id()}});
      return;
    }
    if (exec.stop_reason() == StopReason::kCancelled) {
      ReleaseResources(exec.Snapshot(), env);
      Finish(exec, v1::JOB_STATE_CANCELLED, stage, v1::STAGE_STATE_CANCELLED, absl::CancelledError("cancelled by client"));
      return;
    }
    if (!status.ok()) {
      logging::Warning("stage failed", {{"job", job.job_id()}, {"stage", StageName(stage)}, {"error", std::string(status.message())}});
      Finish(exec, v1::JOB_STATE_FAILED, stage, v1::STAGE_STATE_FAILED, status);
      return;
    }
    (void)exec.Update([&](v1::Job& j) {
      v1::StageStatus& s = StageOf(j, stage);
      if (s.state() == v1::STAGE_STATE_RUNNING) s.set_state(v1::STAGE_STATE_SUCCEEDED);
      *s.mutable_end_time() = ToTimestamp(absl::Now());
      s.set_eta_seconds(0);
    });
  }
  Finish(exec, v1::JOB_STATE_SUCCEEDED, v1::STAGE_UNSPECIFIED, v1::STAGE_STATE_UNSPECIFIED, absl::OkStatus());
}

}  // namespace distill::coordinator
