#ifndef DISTILL_SERVICES_INFERENCE_INFERENCE_SERVICE_H_
#define DISTILL_SERVICES_INFERENCE_INFERENCE_SERVICE_H_

// The gRPC adapter of inference: serves distilled students (services/inference/serving/ does the work).
// Every handler authenticates through rpc::Handle and maps the core's absl::Status in one place.

#include <memory>

#include "common/rpc/handler.h"
#include "common/rpc/service_main.h"
#include "distill/v1/inference.grpc.pb.h"
#include "services/inference/serving/metrics.h"
#include "services/inference/serving/model_registry.h"

namespace distill::services {

// Thread-safe: handlers run concurrently on gRPC's threads; the registry is thread-safe.
class InferenceService final : public v1::Inference::Service {
 public:
  // `registry` and `metrics` (may be null) outlive the service.
  InferenceService(rpc::CallGuard guard, inference::ModelRegistry* registry, inference::InferenceMetrics* metrics)
      : guard_(guard), registry_(registry), metrics_(metrics) {}

  grpc::Status Predict(grpc::ServerContext* context, const v1::PredictRequest* request,
                       v1::PredictResponse* response) override;
  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status LoadModel(grpc::ServerContext* context, const v1::LoadModelRequest* request,
                         v1::LoadModelResponse* response) override;
  grpc::Status UnloadModel(grpc::ServerContext* context, const v1::UnloadModelRequest* request,
                           v1::UnloadModelResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;

 private:
  const rpc::CallGuard guard_;
  inference::ModelRegistry* const registry_;
  inference::InferenceMetrics* const metrics_;
};

// The binary's name, embedded defaults and module factory, shared by `distill-inference`
// and `distill up`.
rpc::ServiceDefinition InferenceDefinition();

}  // namespace distill::services

#endif  // DISTILL_SERVICES_INFERENCE_INFERENCE_SERVICE_H_
