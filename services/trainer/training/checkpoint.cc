#include "services/trainer/training/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "c10/util/Exception.h"
#include "common/artifacts/artifacts.h"
#include "common/dataset/example_json.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/checkpoint/file_io.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "services/trainer/training/worker_protocol.h"
#include "torch/serialize.h"

namespace distill::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kTmpPrefix = ".tmp-";
constexpr int kStateFormat = 1;

std::string Join(const std::string& dir, std::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

absl::Status FsError(std::string_view what, const std::string& path, const std::error_code& error) {
  return absl::InternalError(strings::Cat(what, " ", path, ": ", error.message()));
}

json EvalToJson(const v1::EvalResult& eval) { return json::parse(dataset::ProtoToJson(eval)); }

absl::StatusOr<v1::EvalResult> EvalFromJson(const json& j, const std::string& path) {
  v1::EvalResult eval;
  if (!google::protobuf::util::JsonStringToMessage(j.dump(), &eval).ok()) {
    return absl::InvalidArgumentError(strings::Cat(path, ": malformed evaluation result"));
  }
  return eval;
}

// Replaces `to` by `from` (both directories): `to` is removed first when it exists.
absl::Status RenameDir(const std::string& from, const std::string& to) {
  std::error_code error;
  if (fs::exists(to, error)) {
    fs::remove_all(to, error);
    if (error) return FsError("cannot remove", to, error);
  }
  fs::rename(from, to, error);
  if (error) return FsError(strings::Cat("cannot rename ", from, " to"), to, error);
  return SyncPath(fs::path(to).parent_path().string());
}

absl::Status SyncTree(const std::string& dir) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file()) RETURN_IF_ERROR(SyncPath(entry.path().string()));
  }
  if (error) return FsError("cannot list", dir, error);
  return SyncPath(dir);
}

}  // namespace

absl::Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::InternalError(strings::Cat("cannot open ", path, " to sync it: ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return absl::InternalError(strings::Cat("fsync ", path, ": ", std::strerror(saved)));
  return absl::OkStatus();
}

std::string CheckpointsDir(const std::string& run_dir) { return Join(run_dir, kCheckpointsDir); }

std::string CheckpointName(int64_t step) { return strings::Cat("step-", step); }

absl::StatusOr<std::optional<std::string>> LatestCheckpoint(const std::string& run_dir) {
  const std::string latest_path = Join(CheckpointsDir(run_dir), kLatestCheckpointFile);
  absl::StatusOr<std::string> latest = student::ReadFileToString(latest_path);
  if (absl::IsNotFound(latest.status())) return std::optional<std::string>();
  if (!latest.ok()) return latest.status();
  const std::string name(absl::StripAsciiWhitespace(*latest));
  if (name.empty() || name.find('/') != std::string::npos) {
    return absl::DataLossError(strings::Cat(latest_path, ": expected a checkpoint name, got \"", name, "\""));
  }
  const std::string dir = Join(CheckpointsDir(run_dir), name);
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::DataLossError(strings::Cat(latest_path, " names ", name, ", which does not exist"));
  }
  return std::optional<std::string>(dir);
}

std::string TrainerStateToJson(const TrainerState& s) {
  json j;
  j["format"] = kStateFormat;
  j["step"] = s.step;
  j["total_steps"] = s.total_steps;
  j["data_position"] = {{"epoch", s.position.epoch}, {"batch", s.position.batch}};
  j["scheduler"] = {{"step", s.step}, {"learning_rate", s.learning_rate}};
  j["rng"] = {{"seed", s.seed},
              {"scheme",
               "torch generator reseeded per step from (seed, rank, step); batches "
               "laid out per epoch from (seed, epoch)"}};
  j["spec_hash"] = s.spec_hash;
  j["dataset_hash"] = s.dataset_hash;
  j["latest_eval"] = s.latest_eval ? EvalToJson(*s.latest_eval) : json(nullptr);
  j["best_eval"] = s.best_eval ? EvalToJson(*s.best_eval) : json(nullptr);
  j["best_checkpoint"] = s.best_checkpoint;
  j["early_stopping"] = {{"reference_accuracy", s.early_stopping_reference},
                         {"evals_without_improvement", s.evals_without_improvement},
                         {"stopped", s.stopped_early}};
  json losses = json::object();
  for (const auto& [name, value] : s.last_losses) losses[name] = value;
  j["last_losses"] = losses;
  return j.dump(2) + "\n";
}

absl::StatusOr<TrainerState> ReadTrainerState(const std::string& checkpoint_dir) {
  const std::string path = Join(checkpoint_dir, kTrainerStateFile);
  ASSIGN_OR_RETURN(std::string text, student::ReadFileToString(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(strings::Cat(path, ": not a JSON object"));
  TrainerState s;
  try {
    if (j.at("format").get<int>() != kStateFormat) {
      return absl::FailedPreconditionError(
          strings::Cat(path, ": unsupported format ", j.at("format").dump()));
    }
    s.step = j.at("step").get<int64_t>();
    s.total_steps = j.at("total_steps").get<int64_t>();
    s.position.epoch = j.at("data_position").at("epoch").get<int64_t>();
    s.position.batch = j.at("data_position").at("batch").get<int64_t>();
    s.learning_rate = j.at("scheduler").at("learning_rate").get<double>();
    s.seed = j.at("rng").at("seed").get<uint64_t>();
    s.spec_hash = j.at("spec_hash").get<std::string>();
    s.dataset_hash = j.at("dataset_hash").get<std::string>();
    if (!j.at("latest_eval").is_null()) {
      ASSIGN_OR_RETURN(s.latest_eval, EvalFromJson(j["latest_eval"], path));
    }
    if (!j.at("best_eval").is_null()) {
      ASSIGN_OR_RETURN(s.best_eval, EvalFromJson(j["best_eval"], path));
    }
    s.best_checkpoint = j.at("best_checkpoint").get<std::string>();
    s.early_stopping_reference = j.at("early_stopping").at("reference_accuracy").get<double>();
    s.evals_without_improvement = j.at("early_stopping").at("evals_without_improvement").get<int>();
    s.stopped_early = j.at("early_stopping").at("stopped").get<bool>();
    for (const auto& [name, value] : j.at("last_losses").items())
      s.last_losses.emplace_back(name, value.get<double>());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(strings::Cat(path, ": ", e.what()));
  }
  return s;
}

void RemoveIncompleteWrites(const std::string& run_dir) {
  std::error_code error;
  for (const std::string& dir : {run_dir, CheckpointsDir(run_dir)}) {
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      if (entry.path().filename().string().rfind(kTmpPrefix, 0) == 0) fs::remove_all(entry.path(), error);
    }
  }
}

absl::StatusOr<std::string> WriteCheckpoint(const std::string& run_dir, const student::Student& student,
                                            const torch::optim::Optimizer& optimizer,
                                            const TrainerState& state) {
  const std::string checkpoints = CheckpointsDir(run_dir);
  const std::string name = CheckpointName(state.step);
  const std::string tmp = Join(checkpoints, strings::Cat(kTmpPrefix, name));
  const std::string final_dir = Join(checkpoints, name);
  std::error_code error;
  fs::create_directories(checkpoints, error);
  if (error) return FsError("cannot create", checkpoints, error);
  fs::remove_all(tmp, error);
  fs::create_directories(tmp, error);
  if (error) return FsError("cannot create", tmp, error);

  RETURN_IF_ERROR(student::SaveStudent(student, tmp));
  const std::string optimizer_path = Join(tmp, kOptimizerFile);
  try {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to(optimizer_path);
  } catch (const c10::Error& e) {
    return absl::InternalError(strings::Cat("writing ", optimizer_path, ": ", e.what_without_backtrace()));
  }
  RETURN_IF_ERROR(student::WriteFileAtomically(Join(tmp, kTrainerStateFile), TrainerStateToJson(state)));
  RETURN_IF_ERROR(SyncTree(tmp));
  RETURN_IF_ERROR(RenameDir(tmp, final_dir));
  RETURN_IF_ERROR(student::WriteFileAtomically(Join(checkpoints, kLatestCheckpointFile), name + "\n"));

  const std::set<std::string> keep = {name, state.best_checkpoint};
  for (const auto& entry : fs::directory_iterator(checkpoints, error)) {
    const std::string entry_name = entry.path().filename().string();
    if (entry.is_directory() && entry_name.rfind("step-", 0) == 0 && keep.count(entry_name) == 0) {
      fs::remove_all(entry.path(), error);
    }
  }
  return final_dir;
}

absl::Status LoadOptimizerState(const std::string& checkpoint_dir, torch::optim::Optimizer& optimizer) {
  const std::string path = Join(checkpoint_dir, kOptimizerFile);
  std::error_code error;
  if (!fs::exists(path, error)) return absl::NotFoundError(strings::Cat(path, ": no such file"));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(
        strings::Cat(path, ": does not fit this run's optimizer: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WriteModelDir(const std::string& run_dir, const std::string& checkpoint_dir,
                                          const std::string& manifest_json) {
  const std::string tmp = Join(run_dir, strings::Cat(kTmpPrefix, kModelDir));
  const std::string final_dir = Join(run_dir, kModelDir);
  std::error_code error;
  fs::remove_all(tmp, error);
  fs::create_directories(tmp, error);
  if (error) return FsError("cannot create", tmp, error);
  json manifest = json::parse(manifest_json, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object()) return absl::InternalError("model manifest: not a JSON object");
  json files = json::array();
  for (const char* file : {student::kConfigFile, student::kWeightsFile, student::kTokenizerFile}) {
    const std::string from = Join(checkpoint_dir, file), to = Join(tmp, file);
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
    if (error) return FsError(strings::Cat("cannot copy ", from, " to"), to, error);
    ASSIGN_OR_RETURN(std::string hash, artifacts::FileContentHash(to));
    files.push_back({{"path", file},
                     {"size_bytes", static_cast<int64_t>(fs::file_size(to, error))},
                     {"content_hash", hash}});
  }
  manifest["files"] = files;
  const std::string manifest_path = Join(tmp, kManifestFile);
  RETURN_IF_ERROR(student::WriteFileAtomically(manifest_path, manifest.dump(2) + "\n"));
  ASSIGN_OR_RETURN(std::string manifest_hash, artifacts::FileContentHash(manifest_path));
  RETURN_IF_ERROR(SyncTree(tmp));
  RETURN_IF_ERROR(RenameDir(tmp, final_dir));
  return manifest_hash;
}

}  // namespace distill::trainer
