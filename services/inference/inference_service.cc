#include "services/inference/inference_service.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging/logging.h"
#include "common/rpc/service_module.h"
#include "common/status/macros.h"
#include "common/student/model/few_rows_linear.h"
#include "services/inference/inference_config.h"
#include "services/inference/openai_http.h"
#include "services/inference/serving/runner.h"

namespace distill::services {
namespace {

using inference::GenerationAsk;

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// RESOURCE_EXHAUSTED from a full queue carries its retry hint to the client as trailing metadata.
void AddRetryHint(grpc::ServerContext* context, const absl::Status& status) {
  if (std::optional<absl::Duration> hint = inference::RetryHint(status); hint.has_value()) {
    context->AddTrailingMetadata("retry-after-ms", std::to_string(absl::ToInt64Milliseconds(*hint)));
  }
}

}  // namespace

grpc::Status InferenceService::Predict(grpc::ServerContext* context, const v1::PredictRequest* request,
                                       v1::PredictResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    GenerationAsk ask;
    ask.input = request->input();
    ask.choices = request->choices();
    ask.sampling = request->sampling();
    ask.num_beams = request->num_beams();
    ask.deadline = DeadlineOf(*context);
    inference::RunCallbacks callbacks;
    callbacks.cancelled = [context] { return context->IsCancelled(); };
    absl::StatusOr<inference::RunResult> run = inference::RunGeneration(
        *registry_, metrics_, "Predict", request->model(), request->version(), ask, callbacks);
    if (!run.ok()) {
      AddRetryHint(context, run.status());
      return run.status();
    }
    const v1::GenerateResult& result = run->result;
    response->set_text(result.text());
    response->set_answer(result.answer());
    response->set_model_version(result.model_version());
    response->set_finish_reason(result.finish_reason());
    response->set_input_tokens(result.input_tokens());
    response->set_output_tokens(result.output_tokens());
    response->set_queue_seconds(run->queue_seconds);
    response->set_compute_seconds(run->compute_seconds);
    return absl::OkStatus();
  });
}

grpc::Status InferenceService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    GenerationAsk ask;
    ask.input = request->input();
    ask.choices = request->choices();
    ask.sampling = request->sampling();
    ask.num_beams = request->num_beams();
    ask.include_rationale = request->include_rationale();
    ask.stream = true;
    ask.deadline = DeadlineOf(*context);
    inference::RunCallbacks callbacks;
    callbacks.cancelled = [context] { return context->IsCancelled(); };
    callbacks.on_chunk = [writer](const v1::TokenChunk& chunk) {
      v1::GenerateResponse response;
      *response.mutable_chunk() = chunk;
      return writer->Write(response);
    };
    absl::StatusOr<inference::RunResult> run = inference::RunGeneration(
        *registry_, metrics_, "Generate", request->model(), request->version(), ask, callbacks);
    if (!run.ok()) {
      AddRetryHint(context, run.status());
      return run.status();
    }
    v1::GenerateResponse response;
    *response.mutable_result() = run->result;
    if (!writer->Write(response)) return absl::CancelledError("the client went away before the result");
    return absl::OkStatus();
  });
}

grpc::Status InferenceService::LoadModel(grpc::ServerContext* context, const v1::LoadModelRequest* request,
                                         v1::LoadModelResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    absl::StatusOr<v1::ModelInfo> info = registry_->Load(*request);
    if (!info.ok()) return info.status();
    *response->mutable_model() = *info;
    return absl::OkStatus();
  });
}

grpc::Status InferenceService::UnloadModel(grpc::ServerContext* context, const v1::UnloadModelRequest* request,
                                           v1::UnloadModelResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    absl::StatusOr<std::vector<v1::ModelInfo>> unloaded = registry_->Unload(request->name(), request->version());
    if (!unloaded.ok()) return unloaded.status();
    for (v1::ModelInfo& info : *unloaded) *response->add_unloaded() = std::move(info);
    return absl::OkStatus();
  });
}

grpc::Status InferenceService::ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                                          v1::ListModelsResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    for (v1::ModelInfo& info : registry_->List(request->name())) *response->add_models() = std::move(info);
    return absl::OkStatus();
  });
}

namespace {

// The inference server: the registry, the gRPC service, the OpenAI-compatible HTTP API, and the start-up
// loads that readiness waits for.
class InferenceModule final : public rpc::ServiceModule {
 public:
  std::string ExtraListening() const override { return http_ != nullptr ? absl::StrCat(" http=", http_->address()) : ""; }
  InferenceModule(const inference::InferenceConfig& config, const rpc::ModuleContext& context)
      : config_(config),
        metrics_(*context.registry),
        registry_(config.artifact_root, config.serving, &metrics_),
        service_(context.guard, &registry_, &metrics_),
        authenticator_(context.guard.authenticator) {}

  absl::Status Start() {
    // Decoding's products run on FewRowsLinear's helpers (the cores); libtorch's pool gets one thread.
    student::ConfigureDecodingThreads();
    if (!config_.http_address.empty()) {
      absl::StatusOr<std::unique_ptr<inference::OpenAiHttpServer>> http =
          inference::OpenAiHttpServer::Start(config_.http_address, &registry_, &metrics_, authenticator_);
      if (!http.ok()) return http.status();
      http_ = std::move(*http);
      logging::Info("OpenAI-compatible API listening", {{"http", http_->address()}});
    }
    if (config_.models.empty()) {
      startup_loaded_.store(true);
    } else {
      loader_ = std::thread([this] { LoadStartupModels(); });
    }
    return absl::OkStatus();
  }

  ~InferenceModule() override { BeginShutdown(); }

  std::vector<grpc::Service*> services() override { return {&service_}; }
  std::vector<std::string> service_names() const override { return {v1::Inference::service_full_name()}; }
  bool Ready() const override { return startup_loaded_.load(); }

  void SetReadinessListener(std::function<void()> changed) override {
    absl::MutexLock lock(&mu_);
    listener_ = std::move(changed);
    if (startup_loaded_.load() && listener_) listener_();
  }

  void BeginShutdown() override {
    if (loader_.joinable()) loader_.join();
    {
      absl::MutexLock lock(&mu_);
      listener_ = nullptr;
    }
    if (http_ != nullptr) http_->Stop();
  }

 private:
  void LoadStartupModels() {
    bool all = true;
    for (const v1::LoadModelRequest& request : config_.models) {
      absl::StatusOr<v1::ModelInfo> info = registry_.Load(request);
      if (!info.ok()) {
        all = false;
        logging::Error("start-up model failed to load; the server stays not ready",
                       {{"model", request.name()}, {"version", request.version()},
                        {"error", std::string(info.status().message())}});
      }
    }
    startup_loaded_.store(all);
    absl::MutexLock lock(&mu_);
    if (listener_) listener_();
  }

  const inference::InferenceConfig config_;
  inference::InferenceMetrics metrics_;
  inference::ModelRegistry registry_;
  InferenceService service_;
  const rpc::Authenticator* const authenticator_;
  std::unique_ptr<inference::OpenAiHttpServer> http_;
  std::thread loader_;
  std::atomic<bool> startup_loaded_{false};
  absl::Mutex mu_;
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

rpc::ServiceDefinition InferenceDefinition() {
  auto config = std::make_shared<inference::InferenceConfig>();
  rpc::ServiceDefinition definition;
  definition.name = "inference";
  definition.defaults.server.grpc_address = "0.0.0.0:50054";
  definition.defaults.server.metrics_address = "0.0.0.0:9404";
  definition.read_config = [config](config::Node& root) { inference::ReadInferenceConfig(root, config.get()); };
  definition.factory =
      [config](const rpc::ModuleContext& context) -> absl::StatusOr<std::unique_ptr<rpc::ServiceModule>> {
    auto module = std::make_unique<InferenceModule>(*config, context);
    RETURN_IF_ERROR(module->Start());
    return module;
  };
  return definition;
}

}  // namespace distill::services
