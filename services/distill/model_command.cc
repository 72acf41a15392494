#include "services/distill/model_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "c10/util/Exception.h"
#include "common/cli/flags.h"
#include "common/dataset/student_text.h"
#include "common/strings/strings.h"
#include "common/student/checkpoint/file_io.h"
#include "common/student/objectives/objectives.h"
#include "common/student/student.h"
#include "nlohmann/json.hpp"
#include "torch/types.h"

namespace distill::services {
namespace {

using student::Student;

constexpr char kUsage[] =
    "usage: distill model <info|generate|logits|init> ...\n"
    "\n"
    "  info DIR [--json]                          describe a checkpoint directory\n"
    "  generate DIR --text TEXT [flags]           generate from a student\n"
    "  logits DIR --input-ids 1,2 --decoder-input-ids 0,5\n"
    "                                             print decoder logits as JSON\n"
    "  init --preset tiny|mini|small|base --out DIR    write a randomly initialised checkpoint\n"
    "\n"
    "Run `distill model <command> --help` for a command's flags.\n";

struct Io {
  std::ostream& out;
  std::ostream& err;
  int Fail(const std::string& message, int code = 2) const {
    err << "distill model: " << message << "\n";
    return code;
  }
};

// Parses `flags`; returns the positional arguments, or sets `exit_code` (help: 0, error: 2).
bool ParseFlags(cli::FlagSet& flags, const std::vector<std::string>& args, const Io& io,
                std::vector<std::string>* positional, int* exit_code) {
  absl::StatusOr<std::vector<std::string>> parsed = flags.Parse(args);
  if (flags.help_requested()) {
    io.out << flags.Usage();
    *exit_code = 0;
    return false;
  }
  if (!parsed.ok()) {
    *exit_code = io.Fail(std::string(parsed.status().message()));
    return false;
  }
  *positional = *std::move(parsed);
  return true;
}

bool OneDirectory(const std::vector<std::string>& positional, const Io& io, int* exit_code) {
  if (positional.size() == 1) return true;
  *exit_code = io.Fail(positional.empty() ? "missing the checkpoint directory"
                                          : strings::Cat("unexpected argument \"", positional[1], "\""));
  return false;
}

absl::StatusOr<std::vector<int64_t>> ParseIds(const std::vector<std::string>& items, std::string_view flag) {
  std::vector<int64_t> ids;
  for (const std::string& item : items) {
    int64_t id;
    if (!absl::SimpleAtoi(item, &id)) {
      return absl::InvalidArgumentError(strings::Cat(flag, ": \"", item, "\" is not an integer"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError(strings::Cat(flag, ": at least one id is required"));
  return ids;
}

int64_t FileSize(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? -1 : static_cast<int64_t>(size);
}

int Info(const std::vector<std::string>& args, const Io& io) {
  bool json = false;
  cli::FlagSet flags("distill model info DIR [--json]");
  flags.Bool("json", &json, "print JSON instead of text");
  std::vector<std::string> positional;
  int code = 0;
  if (!ParseFlags(flags, args, io, &positional, &code) || !OneDirectory(positional, io, &code)) return code;
  const std::string& dir = positional[0];
  absl::StatusOr<Student> loaded = student::LoadStudent(dir);
  if (!loaded.ok()) return io.Fail(std::string(loaded.status().message()));
  const auto& model = static_cast<const student::T5Student&>(*loaded->model);
  const student::T5Config& c = model.config();
  nlohmann::ordered_json info = {
      {"directory", dir},
      {"family", std::string(loaded->model->family())},
      {"parameters", loaded->model->NumParameters()},
      {"vocab_size", c.vocab_size},
      {"d_model", c.d_model},
      {"d_kv", c.d_kv},
      {"d_ff", c.d_ff},
      {"num_layers", c.num_layers},
      {"num_decoder_layers", c.num_decoder_layers},
      {"num_heads", c.num_heads},
      {"feed_forward_proj", c.feed_forward_proj},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"relative_attention_num_buckets", c.relative_attention_num_buckets},
      {"relative_attention_max_distance", c.relative_attention_max_distance},
      {"dropout_rate", c.dropout_rate},
      {"tokenizer_pieces", loaded->tokenizer->vocab_size()},
      {"weights_bytes", FileSize((std::filesystem::path(dir) / student::kWeightsFile).string())},
  };
  if (json) {
    io.out << info.dump(2) << "\n";
    return 0;
  }
  for (const auto& [key, value] : info.items()) {
    io.out << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
  }
  return 0;
}

int Generate(const std::vector<std::string>& args, const Io& io) {
  std::string text, text_file, objective_name = "standard";
  bool explain = false;
  int max_new_tokens = 64, top_k = 0, num_beams = 1;
  double temperature = 0, top_p = 1;
  int64_t seed = -1;
  cli::FlagSet flags("distill model generate DIR --text TEXT [flags]");
  flags.String("text", &text, "the input (a question)");
  flags.String("text-file", &text_file, "more inputs, one per line, generated as one batch");
  flags.String("objective", &objective_name,
               "how the student was trained: standard | step_by_step | cot_sequence (renders the input)");
  flags.Bool("explain", &explain, "step_by_step: generate the rationale (\"explain: \") instead of the answer");
  flags.Int("max-new-tokens", &max_new_tokens, "most tokens generated per input");
  flags.Double("temperature", &temperature, "0 = greedy; > 0 samples");
  flags.Int("top-k", &top_k, "sampling: keep the k most likely tokens (0 = all)");
  flags.Double("top-p", &top_p, "sampling: nucleus probability mass, in (0, 1]");
  flags.Int("seed", &seed, "sampling seed (-1 = unseeded)");
  flags.Int("num-beams", &num_beams, "beam search width (1 = off)");
  std::vector<std::string> positional;
  int code = 0;
  if (!ParseFlags(flags, args, io, &positional, &code) || !OneDirectory(positional, io, &code)) return code;
  absl::StatusOr<student::ObjectiveKind> objective = student::ParseObjectiveKind(objective_name);
  if (!objective.ok()) return io.Fail(strings::Cat("--", objective.status().message()));
  if (explain && *objective != student::ObjectiveKind::kStepByStep) {
    return io.Fail("--explain: only a step_by_step student has a rationale task");
  }
  std::vector<std::string> texts;
  if (!text.empty()) texts.push_back(text);
  if (!text_file.empty()) {
    std::ifstream in(text_file);
    if (!in) return io.Fail(strings::Cat("--text-file: cannot open ", text_file));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (texts.empty()) return io.Fail("--text or --text-file is required");

  absl::StatusOr<Student> loaded = student::LoadStudent(positional[0]);
  if (!loaded.ok()) return io.Fail(std::string(loaded.status().message()));
  std::vector<std::string> inputs;
  for (const std::string& t : texts) {
    inputs.push_back(explain ? dataset::ExplainInput(t) : student::AnswerInput(*objective, t));
  }
  const student::Tokenizer::Batch batch = loaded->tokenizer->EncodeBatch(inputs, /*max_length=*/0);
  const torch::Tensor ids = torch::tensor(std::vector<int64_t>(batch.ids.begin(), batch.ids.end()))
                                .view({batch.rows, batch.cols});
  const torch::Tensor mask = torch::tensor(std::vector<int64_t>(batch.mask.begin(), batch.mask.end()))
                                 .view({batch.rows, batch.cols});
  student::GenerationOptions options = loaded->model->DefaultGenerationOptions();
  options.max_new_tokens = max_new_tokens;
  options.temperature = static_cast<float>(temperature);
  options.top_k = top_k;
  options.top_p = static_cast<float>(top_p);
  options.num_beams = num_beams;
  if (seed >= 0) options.seed = static_cast<uint64_t>(seed);
  absl::StatusOr<std::vector<std::vector<int>>> out = loaded->model->Generate(ids, mask, options);
  if (!out.ok()) {
    return io.Fail(std::string(out.status().message()),
                   out.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  for (const std::vector<int>& sequence : *out) io.out << loaded->tokenizer->Decode(sequence) << "\n";
  return 0;
}

int Logits(const std::vector<std::string>& args, const Io& io) {
  std::vector<std::string> input_items, decoder_items;
  cli::FlagSet flags("distill model logits DIR --input-ids 1,2,3 --decoder-input-ids 0,5");
  flags.StringList("input-ids", &input_items, "encoder token ids, comma-separated");
  flags.StringList("decoder-input-ids", &decoder_items,
                   "decoder input ids, comma-separated (starting with decoder_start_token_id, usually 0)");
  std::vector<std::string> positional;
  int code = 0;
  if (!ParseFlags(flags, args, io, &positional, &code) || !OneDirectory(positional, io, &code)) return code;
  absl::StatusOr<std::vector<int64_t>> input = ParseIds(input_items, "--input-ids");
  if (!input.ok()) return io.Fail(std::string(input.status().message()));
  absl::StatusOr<std::vector<int64_t>> decoder = ParseIds(decoder_items, "--decoder-input-ids");
  if (!decoder.ok()) return io.Fail(std::string(decoder.status().message()));
  absl::StatusOr<Student> loaded = student::LoadStudent(positional[0]);
  if (!loaded.ok()) return io.Fail(std::string(loaded.status().message()));
  const int64_t vocab = loaded->model->vocab_size();
  for (const auto& [ids, flag] : {std::pair{&*input, "--input-ids"}, std::pair{&*decoder, "--decoder-input-ids"}}) {
    for (int64_t id : *ids) {
      if (id < 0 || id >= vocab) {
        return io.Fail(strings::Cat(flag, ": id ", id, " is outside the vocabulary [0, ", vocab, ")"));
      }
    }
  }
  auto& t5 = static_cast<student::T5Student&>(*loaded->model).t5();
  torch::Tensor logits;
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor input_ids = torch::tensor(*input).view({1, -1});
    const torch::Tensor decoder_ids = torch::tensor(*decoder).view({1, -1});
    logits = t5.Forward(input_ids, torch::ones_like(input_ids), decoder_ids).contiguous();
  } catch (const c10::Error& e) {
    return io.Fail(strings::Cat("model failed: ", e.what_without_backtrace()), 1);
  }
  io.out << "{\"shape\": [" << logits.size(0) << ", " << logits.size(1) << ", " << logits.size(2)
         << "], \"values\": [";
  const float* values = logits.data_ptr<float>();
  char buffer[32];
  for (int64_t i = 0; i < logits.numel(); ++i) {
    std::snprintf(buffer, sizeof(buffer), "%.9g", values[i]);  // round-trips float32 exactly
    io.out << (i == 0 ? "" : ", ") << buffer;
  }
  io.out << "]}\n";
  return 0;
}

// Texts to train a tokenizer on: every string value of a JSON-lines object, or each plain line.
std::vector<std::string> CorpusLines(const std::string& path) {
  std::vector<std::string> texts;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_object()) {
      for (const auto& [key, value] : json.items()) {
        if (value.is_string() && !value.get<std::string>().empty()) texts.push_back(value.get<std::string>());
      }
    } else {
      texts.push_back(line);
    }
  }
  return texts;
}

int Init(const std::vector<std::string>& args, const Io& io) {
  std::string preset, out_dir, vocab_from;
  int64_t seed = 0;
  cli::FlagSet flags("distill model init --preset tiny|mini|small|base --out DIR [--vocab-from FILE] [--seed S]");
  flags.String("preset", &preset, "size preset: tiny | small (t5-v1_1-small) | base (t5-v1_1-base)");
  flags.String("out", &out_dir, "checkpoint directory to write");
  flags.String("vocab-from", &vocab_from,
               "a spiece.model to use, or a text / JSON-lines file to train the tokenizer on");
  flags.Int("seed", &seed, "initialisation seed");
  std::vector<std::string> positional;
  int code = 0;
  if (!ParseFlags(flags, args, io, &positional, &code)) return code;
  if (!positional.empty()) return io.Fail(strings::Cat("unexpected argument \"", positional[0], "\""));
  if (preset.empty()) return io.Fail("--preset is required");
  if (out_dir.empty()) return io.Fail("--out is required");
  absl::StatusOr<student::T5Config> config = student::PresetConfig(preset);
  if (!config.ok()) return io.Fail(strings::Cat("--", config.status().message()));

  // A pretrained vocabulary keeps the preset's embedding size (T5's 32128 rows for 32000 pieces); a trained
  // one sizes the embedding to itself.
  const int train_vocab = std::min(config->vocab_size, 8000);
  std::unique_ptr<student::Tokenizer> tokenizer;
  bool fit_vocab = true;
  if (vocab_from.empty()) {
    absl::StatusOr<std::unique_ptr<student::Tokenizer>> built = student::BuiltinTokenizer(train_vocab);
    if (!built.ok()) return io.Fail(std::string(built.status().message()), 1);
    tokenizer = *std::move(built);
  } else {
    absl::StatusOr<std::unique_ptr<student::Tokenizer>> loaded = student::Tokenizer::Load(vocab_from);
    if (loaded.ok()) {
      tokenizer = *std::move(loaded);
      fit_vocab = tokenizer->vocab_size() > config->vocab_size;
    } else if (loaded.status().code() == absl::StatusCode::kNotFound) {
      return io.Fail(strings::Cat("--vocab-from: ", loaded.status().message()));
    } else {
      const std::vector<std::string> texts = CorpusLines(vocab_from);
      if (texts.empty()) {
        return io.Fail(strings::Cat("--vocab-from: ", vocab_from,
                                    " is neither a SentencePiece model nor a file with text lines"));
      }
      student::TrainOptions options;
      options.vocab_size = train_vocab;
      absl::StatusOr<std::unique_ptr<student::Tokenizer>> trained = student::Tokenizer::Train(texts, options);
      if (!trained.ok()) return io.Fail(strings::Cat("--vocab-from: ", trained.status().message()));
      tokenizer = *std::move(trained);
    }
  }
  absl::StatusOr<Student> created =
      student::InitStudent(*config, std::move(tokenizer), static_cast<uint64_t>(seed), fit_vocab);
  if (!created.ok()) return io.Fail(std::string(created.status().message()));
  if (absl::Status saved = student::SaveStudent(*created, out_dir); !saved.ok()) return io.Fail(std::string(saved.message()));
  io.out << "wrote " << out_dir << ": " << preset << " preset, " << created->model->NumParameters()
         << " parameters, vocabulary " << created->model->vocab_size() << " (" << created->tokenizer->vocab_size()
         << " tokenizer pieces)\n";
  return 0;
}

}  // namespace

int RunModel(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const Io io{out, err};
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    if (args[0] == "info") return Info(rest, io);
    if (args[0] == "generate") return Generate(rest, io);
    if (args[0] == "logits") return Logits(rest, io);
    if (args[0] == "init") return Init(rest, io);
  } catch (const c10::Error& e) {
    return io.Fail(strings::Cat("libtorch: ", e.what_without_backtrace()), 1);
  }
  err << "distill model: unknown command \"" << args[0] << "\"\n" << kUsage;
  return 2;
}

}  // namespace distill::services
