#include "services/inference/serving/model_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/artifacts/artifacts.h"
#include "common/logging/logging.h"
#include "google/protobuf/util/time_util.h"

namespace distill::inference {
namespace {

// [a-z0-9._-], 1-63 characters, starting with a letter or digit (LoadModelRequest.name).
bool ValidName(const std::string& name) {
  const auto ok = [](char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' || c == '_' || c == '-'; };
  return !name.empty() && name.size() <= 63 && (absl::ascii_islower(name[0]) || absl::ascii_isdigit(name[0])) &&
         std::all_of(name.begin(), name.end(), ok);
}

// [A-Za-z0-9._-], 1-64 characters (LoadModelRequest.version).
bool ValidVersion(const std::string& version) {
  const auto ok = [](char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; };
  return !version.empty() && version.size() <= 64 && std::all_of(version.begin(), version.end(), ok);
}

std::string StateLabel(v1::ModelState state) {
  switch (state) {
    case v1::MODEL_STATE_LOADING:
      return "loading";
    case v1::MODEL_STATE_READY:
      return "ready";
    case v1::MODEL_STATE_DRAINING:
      return "draining";
    case v1::MODEL_STATE_FAILED:
      return "failed";
    default:
      return "unspecified";
  }
}

}  // namespace

ModelRegistry::ModelRegistry(std::string artifact_root, ServingOptions options, InferenceMetrics* metrics)
    : artifact_root_(std::move(artifact_root)), options_(options), metrics_(metrics) {}

ModelRegistry::~ModelRegistry() {
  std::vector<std::thread> drains;
  {
    absl::MutexLock lock(&mu_);
    drains = std::move(drains_);
  }
  for (std::thread& t : drains) t.join();
  absl::MutexLock lock(&mu_);
  for (auto& [name, entries] : models_) {
    for (Entry& e : entries) {
      if (e.model != nullptr) e.model->engine().Shutdown();
    }
  }
  // Engines join their schedulers (after finishing their requests) when the last reference goes.
}

ModelRegistry::Entry* ModelRegistry::Find(const std::string& name, const std::string& version) {
  auto it = models_.find(name);
  if (it == models_.end()) return nullptr;
  for (Entry& e : it->second) {
    if (e.info.version() == version) return &e;
  }
  return nullptr;
}

void ModelRegistry::UpdateStateGauges() {
  if (metrics_ == nullptr) return;
  for (const auto& [name, entries] : models_) {
    for (v1::ModelState state : {v1::MODEL_STATE_LOADING, v1::MODEL_STATE_READY, v1::MODEL_STATE_DRAINING,
                                 v1::MODEL_STATE_FAILED}) {
      const auto n = std::count_if(entries.begin(), entries.end(),
                                   [&](const Entry& e) { return e.info.state() == state; });
      metrics_->versions.Add({{"model", name}, {"state", StateLabel(state)}}).Set(static_cast<double>(n));
    }
  }
}

absl::StatusOr<v1::ModelInfo> ModelRegistry::Load(const v1::LoadModelRequest& request) {
  if (!ValidName(request.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: must be 1-63 characters of [a-z0-9._-] starting with a letter or digit, got \"", request.name(), "\""));
  }
  if (!ValidVersion(request.version())) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: must be 1-64 characters of [A-Za-z0-9._-], got \"", request.version(), "\""));
  }
  if (request.artifact().uri().empty()) return absl::InvalidArgumentError("artifact.uri: required");
  absl::StatusOr<std::string> dir = artifacts::ResolveUri(artifact_root_, request.artifact().uri(), "artifact.uri");
  if (!dir.ok()) return dir.status();

  {
    absl::MutexLock lock(&mu_);
    if (Entry* existing = Find(request.name(), request.version()); existing != nullptr) {
      const bool same = existing->info.artifact().uri() == request.artifact().uri() &&
                        existing->info.artifact().content_hash() == request.artifact().content_hash();
      if (!same && existing->info.state() != v1::MODEL_STATE_FAILED) {
        return absl::AlreadyExistsError(absl::StrCat("model ", request.name(), " version ", request.version(),
                                                     " is already loaded from ", existing->info.artifact().uri()));
      }
      if (existing->info.state() == v1::MODEL_STATE_READY) return existing->info;
      if (existing->info.state() == v1::MODEL_STATE_LOADING) {
        // Entries move when the vector grows, so the condition looks the version up each time.
        auto loaded = [this, &request]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          const Entry* e = Find(request.name(), request.version());
          return e == nullptr || e->info.state() != v1::MODEL_STATE_LOADING;
        };
        mu_.Await(absl::Condition(&loaded));
        // `existing` may have been replaced meanwhile; look again.
        existing = Find(request.name(), request.version());
        if (existing == nullptr) return absl::AbortedError("the version was unloaded while loading");
        if (existing->info.state() == v1::MODEL_STATE_READY) return existing->info;
        return absl::FailedPreconditionError(existing->info.message());
      }
      if (existing->info.state() == v1::MODEL_STATE_DRAINING) {
        return absl::FailedPreconditionError(absl::StrCat("model ", request.name(), " version ", request.version(),
                                                          " is draining; load it again once it is gone"));
      }
      existing->info.set_state(v1::MODEL_STATE_LOADING);  // FAILED before: try again
      existing->info.clear_message();
    } else {
      Entry entry;
      entry.info.set_name(request.name());
      entry.info.set_version(request.version());
      entry.info.set_state(v1::MODEL_STATE_LOADING);
      entry.info.set_objective(request.objective());
      *entry.info.mutable_task() = request.task();
      *entry.info.mutable_artifact() = request.artifact();
      entry.order = next_order_++;
      models_[request.name()].push_back(std::move(entry));
    }
    UpdateStateGauges();
  }

  logging::Info("loading model", {{"model", request.name()}, {"version", request.version()}, {"dir", *dir}});
  ServingOptions options = options_;
  if (metrics_ != nullptr) {
    const metrics::Labels labels = {{"model", request.name()}, {"version", request.version()}};
    options.engine.batch_size =
        &metrics_->batch_size.Add(labels, metrics::LinearBuckets(1, 1, std::min(options.engine.max_batch, 32)));
    options.engine.tokens = &metrics_->tokens.Add(labels);
    options.engine.queue_depth = &metrics_->queue_depth.Add(labels);
    metrics_->queue_capacity.Add(labels).Set(static_cast<double>(options.engine.max_queue));
  }
  absl::StatusOr<std::shared_ptr<ServedModel>> model = ServedModel::Load(request, *dir, options);

  std::shared_ptr<ServedModel> replaced;
  std::string replaced_version;
  absl::MutexLock lock(&mu_);
  Entry* entry = Find(request.name(), request.version());
  if (entry == nullptr) return absl::AbortedError("the version was unloaded while loading");
  if (!model.ok()) {
    entry->info.set_state(v1::MODEL_STATE_FAILED);
    entry->info.set_message(std::string(model.status().message()));
    UpdateStateGauges();
    logging::Warning("model failed to load", {{"model", request.name()}, {"version", request.version()},
                                              {"error", std::string(model.status().message())}});
    return model.status();
  }
  // The switch: one step under the lock, so every request sees either the old or the new version.
  for (Entry& other : models_[request.name()]) {
    if (other.info.active() && &other != entry) {
      other.info.set_active(false);
      other.info.set_state(v1::MODEL_STATE_DRAINING);
      drains_.emplace_back([this, m = other.model, name = request.name(), version = other.info.version()] {
        Drain(m, name, version);
      });
    }
  }
  entry->model = *model;
  entry->info = (*model)->info();
  entry->info.set_state(v1::MODEL_STATE_READY);
  entry->info.set_active(true);
  *entry->info.mutable_ready_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  UpdateStateGauges();
  logging::Info("model ready", {{"model", request.name()}, {"version", request.version()},
                                {"parameters", entry->info.parameters()}});
  return entry->info;
}

void ModelRegistry::Drain(std::shared_ptr<ServedModel> model, const std::string& name, const std::string& version) {
  if (model != nullptr) {
    model->engine().Shutdown();
    model->engine().WaitIdle();
  }
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return;
  auto& entries = it->second;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const Entry& e) {
                                 return e.info.version() == version && e.info.state() == v1::MODEL_STATE_DRAINING;
                               }),
                entries.end());
  UpdateStateGauges();
  if (entries.empty()) models_.erase(it);
  logging::Info("model version released", {{"model", name}, {"version", version}});
}

absl::StatusOr<std::vector<v1::ModelInfo>> ModelRegistry::Unload(const std::string& name, const std::string& version) {
  if (name.empty()) return absl::InvalidArgumentError("name: required");
  std::vector<v1::ModelInfo> unloaded;
  std::vector<std::pair<std::shared_ptr<ServedModel>, std::string>> drains;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("name: no model \"", name, "\" is loaded"));
    for (Entry& e : it->second) {
      if (!version.empty() && e.info.version() != version) continue;
      if (e.info.state() == v1::MODEL_STATE_LOADING) {
        return absl::FailedPreconditionError(
            absl::StrCat("model ", name, " version ", e.info.version(), " is still loading"));
      }
    }
    for (Entry& e : it->second) {
      if (!version.empty() && e.info.version() != version) continue;
      unloaded.push_back(e.info);
      e.info.set_active(false);
      e.info.set_state(v1::MODEL_STATE_DRAINING);
      drains.emplace_back(e.model, e.info.version());
    }
    if (unloaded.empty()) {
      return absl::NotFoundError(absl::StrCat("version: model \"", name, "\" has no version \"", version, "\""));
    }
    UpdateStateGauges();
  }
  for (auto& [model, v] : drains) Drain(model, name, v);
  return unloaded;
}

std::vector<v1::ModelInfo> ModelRegistry::List(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::ModelInfo> out;
  for (const auto& [model_name, entries] : models_) {
    if (!name.empty() && model_name != name) continue;
    std::vector<const Entry*> sorted;
    for (const Entry& e : entries) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) { return a->order < b->order; });
    for (const Entry* e : sorted) out.push_back(e->info);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRegistry::Resolve(const std::string& name,
                                                                     const std::string& version) const {
  if (name.empty()) return absl::InvalidArgumentError("model: required");
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("model: no model \"", name, "\" is loaded"));
  for (const Entry& e : it->second) {
    const bool wanted = version.empty() ? e.info.active() : e.info.version() == version;
    if (wanted && e.info.state() == v1::MODEL_STATE_READY) return e.model;
  }
  if (version.empty()) return absl::NotFoundError(absl::StrCat("model: \"", name, "\" has no ready version"));
  return absl::NotFoundError(absl::StrCat("version: model \"", name, "\" has no ready version \"", version, "\""));
}

int ModelRegistry::Loading() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, entries] : models_) {
    for (const Entry& e : entries) n += e.info.state() == v1::MODEL_STATE_LOADING ? 1 : 0;
  }
  return n;
}

}  // namespace distill::inference
