#ifndef DISTILL_SERVICES_INFERENCE_SERVING_MODEL_REGISTRY_H_
#define DISTILL_SERVICES_INFERENCE_SERVING_MODEL_REGISTRY_H_

// The model versions an inference server holds, and their lifecycle:
//
//   LoadModel  LOADING (weights read while the active version keeps serving) -> READY and active, in one
//              step under the registry's lock; the previously active version becomes DRAINING: it takes
//              no new requests, finishes those it started, and is then released.
//   failure    FAILED with the cause (listed until the same version is loaded again or unloaded).
//   Unload     DRAINING, then removed once its requests are done.
//
// Requests hold a std::shared_ptr<ServedModel>, so a version's memory lives until its last request ends.
//
// Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "distill/v1/inference.pb.h"
#include "services/inference/serving/metrics.h"
#include "services/inference/serving/served_model.h"

namespace distill::inference {

class ModelRegistry {
 public:
  // `artifact_root` resolves artifact:// URIs. `metrics` may be null; otherwise it must outlive the registry.
  ModelRegistry(std::string artifact_root, ServingOptions options, InferenceMetrics* metrics);
  // Stops every engine after its requests finish.
  ~ModelRegistry();

  // See the file comment and LoadModel in inference.proto: INVALID_ARGUMENT naming the field (name, version,
  // artifact.uri), NOT_FOUND for a missing directory, FAILED_PRECONDITION for one that does not load,
  // ALREADY_EXISTS for a loaded name + version from another artifact. Blocks until READY or failed.
  absl::StatusOr<v1::ModelInfo> Load(const v1::LoadModelRequest& request);

  // Drains and removes `version` of `name` (every version when empty); returns them as they were before.
  // NOT_FOUND naming the field when there is nothing to unload.
  absl::StatusOr<std::vector<v1::ModelInfo>> Unload(const std::string& name, const std::string& version);

  // Every version (of `name`, or all when empty), sorted by name then load order.
  std::vector<v1::ModelInfo> List(const std::string& name) const;

  // The READY version that serves a request for `name` and `version` (empty = the active one).
  // INVALID_ARGUMENT for an empty name ("model: required"); NOT_FOUND naming the field otherwise.
  absl::StatusOr<std::shared_ptr<ServedModel>> Resolve(const std::string& name, const std::string& version) const;

  // Number of versions LOADING now (readiness waits for start-up loads).
  int Loading() const;

 private:
  struct Entry {
    v1::ModelInfo info;
    std::shared_ptr<ServedModel> model;  // set once READY
    uint64_t order = 0;
  };
  Entry* Find(const std::string& name, const std::string& version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drain(std::shared_ptr<ServedModel> model, const std::string& name, const std::string& version);
  void UpdateStateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string artifact_root_;
  const ServingOptions options_;
  InferenceMetrics* const metrics_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<Entry>> models_ ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> drains_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill::inference

#endif  // DISTILL_SERVICES_INFERENCE_SERVING_MODEL_REGISTRY_H_
