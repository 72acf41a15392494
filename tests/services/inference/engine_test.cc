#include "services/inference/serving/engine.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ATen/Parallel.h"
#include "common/dataset/student_text.h"
#include "common/student/model/generation.h"
#include "common/student/model/student_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/inference/serving/output_text.h"
#include "services/inference/serving/served_model.h"
#include "tests/services/inference/test_model.h"
#include "tests/support/temp_dir.h"

namespace distill::inference {
namespace {

using ::testing::HasSubstr;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    ASSERT_TRUE(testing::WriteTinyModel(dir_.path(), v1::OBJECTIVE_STANDARD).ok());
    absl::StatusOr<student::Student> s = student::LoadStudent(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status();
    student_ = *s;
  }

  std::unique_ptr<Engine> MakeEngine(int max_batch, int max_queue = 64,
                                     absl::Duration max_wait = absl::ZeroDuration()) {
    EngineOptions options;
    options.max_batch = max_batch;
    options.max_queue = max_queue;
    options.max_wait = max_wait;
    return std::make_unique<Engine>(student_, options);
  }

  student::GenerationOptions Options(int max_new_tokens) const {
    student::GenerationOptions o = student_.model->DefaultGenerationOptions();
    o.max_new_tokens = max_new_tokens;
    return o;
  }

  std::vector<int> Encode(const std::string& text) const { return student_.tokenizer->Encode(text); }

  // What the library generates for `text` alone, without the trailing EOS.
  std::vector<int> Alone(const std::string& text, const student::GenerationOptions& o) {
    std::vector<int> ids = Encode(text);
    torch::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
    auto out = student::Generate(static_cast<student::T5Student&>(*student_.model).t5(), t, torch::ones_like(t), o);
    EXPECT_TRUE(out.ok()) << out.status();
    std::vector<int> tokens = (*out)[0];
    if (!tokens.empty() && tokens.back() == o.eos_id) tokens.pop_back();
    return tokens;
  }

  static absl::Status Wait(Request& request) {
    for (;;) {
      std::optional<Request::Event> e = request.NextEvent(absl::Seconds(30));
      if (!e.has_value()) return absl::DeadlineExceededError("test: no event within 30 s");
      if (e->kind == Request::Event::Kind::kDone) return request.status();
    }
  }

  distill::testing::TempDir dir_;
  student::Student student_;
};

const std::vector<std::string> kTexts = {"what is 2 plus 3", "the cat sat on the mat", "7 times 8",
                                         "a much longer question about apples and oranges and pears", "hi",
                                         "how many legs does a spider have"};

TEST_F(EngineTest, ContinuousBatchingGivesEachRequestWhatItWouldGetAlone) {
  for (int max_batch : {1, 3, 8}) {
    auto engine = MakeEngine(max_batch);
    std::vector<std::shared_ptr<Request>> requests;
    for (size_t i = 0; i < kTexts.size(); ++i) {
      // Different lengths make rows finish, leave and let queued ones join mid-batch.
      auto r = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[i])},
                                         Options(6 + 3 * static_cast<int>(i)), absl::InfiniteFuture(), true);
      ASSERT_TRUE(engine->Submit(r).ok());
      requests.push_back(r);
      if (i == 2) {
        // The rest join while the first ones are decoding.
        ASSERT_TRUE(requests[0]->NextEvent(absl::Seconds(30)).has_value());
      }
    }
    for (size_t i = 0; i < kTexts.size(); ++i) {
      ASSERT_TRUE(Wait(*requests[i]).ok());
      EXPECT_EQ(requests[i]->outputs()[0], Alone(kTexts[i], Options(6 + 3 * static_cast<int>(i))))
          << "max_batch " << max_batch << " request " << i;
      EXPECT_NE(requests[i]->finishes()[0], StopReason::kNone);
    }
    engine->WaitIdle();
    EXPECT_EQ(engine->InFlight(), 0);
  }
}

TEST_F(EngineTest, StreamedTokensAreTheOutputInOrder) {
  auto engine = MakeEngine(4);
  auto r = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, Options(12),
                                     absl::InfiniteFuture(), true);
  ASSERT_TRUE(engine->Submit(r).ok());
  std::vector<int> streamed;
  for (;;) {
    std::optional<Request::Event> e = r->NextEvent(absl::Seconds(30));
    ASSERT_TRUE(e.has_value());
    if (e->kind == Request::Event::Kind::kDone) break;
    streamed.insert(streamed.end(), e->tokens.begin(), e->tokens.end());
  }
  ASSERT_TRUE(r->status().ok());
  EXPECT_EQ(streamed, r->outputs()[0]);
  EXPECT_LE(r->enqueued_at(), r->started_at());
  EXPECT_LE(r->started_at(), r->done_at());
}

TEST_F(EngineTest, SegmentsRunOneAfterAnother) {
  auto engine = MakeEngine(4);
  auto r = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[1]), Encode(kTexts[2])},
                                     Options(8), absl::InfiniteFuture(), true);
  ASSERT_TRUE(engine->Submit(r).ok());
  int last_segment = 0;
  for (;;) {
    std::optional<Request::Event> e = r->NextEvent(absl::Seconds(30));
    ASSERT_TRUE(e.has_value());
    if (e->kind == Request::Event::Kind::kDone) break;
    EXPECT_GE(e->segment, last_segment);
    last_segment = e->segment;
  }
  ASSERT_TRUE(r->status().ok());
  EXPECT_EQ(r->outputs()[0], Alone(kTexts[1], Options(8)));
  EXPECT_EQ(r->outputs()[1], Alone(kTexts[2], Options(8)));
  EXPECT_EQ(r->input_tokens(), static_cast<int>(Encode(kTexts[1]).size() + Encode(kTexts[2]).size()));
}

TEST_F(EngineTest, SeededSamplingDoesNotDependOnTheBatch) {
  student::GenerationOptions o = Options(10);
  o.temperature = 1.0;
  o.seed = 42;
  auto engine = MakeEngine(1);
  auto alone = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, o,
                                         absl::InfiniteFuture(), false);
  ASSERT_TRUE(engine->Submit(alone).ok());
  ASSERT_TRUE(Wait(*alone).ok());

  auto batched_engine = MakeEngine(8, 64, absl::Milliseconds(50));
  std::vector<std::shared_ptr<Request>> others;
  for (int i = 0; i < 3; ++i) {
    student::GenerationOptions other = o;
    other.seed = 100 + i;
    others.push_back(std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[i + 1])}, other,
                                               absl::InfiniteFuture(), false));
    ASSERT_TRUE(batched_engine->Submit(others.back()).ok());
  }
  auto again = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, o,
                                         absl::InfiniteFuture(), false);
  ASSERT_TRUE(batched_engine->Submit(again).ok());
  ASSERT_TRUE(Wait(*again).ok());
  EXPECT_EQ(again->outputs()[0], alone->outputs()[0]);
  for (auto& r : others) ASSERT_TRUE(Wait(*r).ok());
}

TEST_F(EngineTest, BeamSearchEqualsTheLibrary) {
  student::GenerationOptions o = Options(8);
  o.num_beams = 3;
  auto engine = MakeEngine(4);
  auto r = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[3])}, o, absl::InfiniteFuture(),
                                     true);
  ASSERT_TRUE(engine->Submit(r).ok());
  ASSERT_TRUE(Wait(*r).ok());
  EXPECT_EQ(r->outputs()[0], Alone(kTexts[3], o));
}

TEST_F(EngineTest, FullQueueIsResourceExhaustedWithARetryHint) {
  auto engine = MakeEngine(/*max_batch=*/1, /*max_queue=*/2);
  auto make = [&] {
    return std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, Options(100000),
                                     absl::InfiniteFuture(), true);
  };
  auto running = make();
  ASSERT_TRUE(engine->Submit(running).ok());
  ASSERT_TRUE(running->NextEvent(absl::Seconds(30)).has_value()) << "decoding started";
  std::vector<std::shared_ptr<Request>> queued = {make(), make()};
  for (auto& r : queued) ASSERT_TRUE(engine->Submit(r).ok());
  absl::Status full = engine->Submit(make());
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_THAT(std::string(full.message()), HasSubstr("queue full"));
  ASSERT_TRUE(RetryHint(full).has_value());
  EXPECT_GT(*RetryHint(full), absl::ZeroDuration());
  for (auto& r : queued) r->Cancel();
  running->Cancel();
  EXPECT_TRUE(absl::IsCancelled(Wait(*running)));
  for (auto& r : queued) EXPECT_TRUE(absl::IsCancelled(Wait(*r)));
  engine->WaitIdle();
}

TEST_F(EngineTest, ACancelledRequestFreesItsSlotForTheNextOne) {
  auto engine = MakeEngine(/*max_batch=*/1);
  auto endless = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, Options(100000),
                                           absl::InfiniteFuture(), true);
  auto next = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[1])}, Options(5),
                                        absl::InfiniteFuture(), false);
  ASSERT_TRUE(engine->Submit(endless).ok());
  ASSERT_TRUE(endless->NextEvent(absl::Seconds(30)).has_value());
  ASSERT_TRUE(engine->Submit(next).ok());
  endless->Cancel();
  EXPECT_TRUE(absl::IsCancelled(Wait(*endless)));
  EXPECT_TRUE(Wait(*next).ok());
  EXPECT_EQ(next->outputs()[0], Alone(kTexts[1], Options(5)));
}

TEST_F(EngineTest, DeadlinesAreHonouredWhileQueuedAndWhileDecoding) {
  auto engine = MakeEngine(/*max_batch=*/1);
  auto decoding = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, Options(100000),
                                            absl::Now() + absl::Milliseconds(300), true);
  auto queued = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[1])}, Options(5),
                                          absl::Now() + absl::Milliseconds(100), false);
  ASSERT_TRUE(engine->Submit(decoding).ok());
  ASSERT_TRUE(engine->Submit(queued).ok());
  absl::Status late = Wait(*decoding);
  EXPECT_TRUE(absl::IsDeadlineExceeded(late)) << late;
  EXPECT_THAT(std::string(late.message()), HasSubstr("while generating"));
  absl::Status expired = Wait(*queued);
  EXPECT_TRUE(absl::IsDeadlineExceeded(expired)) << expired;
  EXPECT_THAT(std::string(expired.message()), HasSubstr("while queued"));
}

TEST_F(EngineTest, ShutdownFinishesWhatWasAcceptedAndRefusesMore) {
  auto engine = MakeEngine(2);
  auto r = std::make_shared<Request>(std::vector<std::vector<int>>{Encode(kTexts[0])}, Options(5),
                                     absl::InfiniteFuture(), false);
  ASSERT_TRUE(engine->Submit(r).ok());
  engine->Shutdown();
  EXPECT_TRUE(absl::IsUnavailable(engine->Submit(r)));
  EXPECT_TRUE(Wait(*r).ok());
}

// Feeds `text`'s tokens to OutputText one at a time and returns the streamed text per segment kind.
std::map<v1::OutputSegment, std::string> Stream(const student::Tokenizer& tokenizer, OutputLayout layout,
                                               bool rationale, const std::vector<std::string>& segment_texts,
                                               OutputText* out) {
  std::map<v1::OutputSegment, std::string> streamed;
  std::vector<std::vector<int>> outputs;
  size_t token_count = 0, chunk_tokens = 0;
  for (size_t s = 0; s < segment_texts.size(); ++s) {
    outputs.push_back(tokenizer.Encode(segment_texts[s], /*add_eos=*/false));
    token_count += outputs.back().size();
    for (int id : outputs.back()) {
      for (const v1::TokenChunk& c : out->Add(static_cast<int>(s), {id})) {
        streamed[c.segment()] += c.text();
        chunk_tokens += c.token_ids_size();
      }
    }
  }
  for (const v1::TokenChunk& c : out->Finish(outputs)) {
    streamed[c.segment()] += c.text();
    chunk_tokens += c.token_ids_size();
  }
  if (rationale || layout == OutputLayout::kAnswer) {
    EXPECT_EQ(chunk_tokens, token_count);
  }
  return streamed;
}

TEST_F(EngineTest, OutputTextChunksAddUpToTheFinalText) {
  const student::Tokenizer& tok = *student_.tokenizer;
  {
    OutputText text(tok, OutputLayout::kAnswer, false);
    auto streamed = Stream(tok, OutputLayout::kAnswer, false, {"the answer is 42"}, &text);
    EXPECT_EQ(streamed[v1::OUTPUT_SEGMENT_ANSWER], text.answer());
    EXPECT_EQ(text.answer(), tok.Decode(tok.Encode("the answer is 42", false)));
  }
  {
    OutputText text(tok, OutputLayout::kExplainAnswer, true);
    auto streamed = Stream(tok, OutputLayout::kExplainAnswer, true, {"3 plus 4 is 7", "7"}, &text);
    EXPECT_EQ(streamed[v1::OUTPUT_SEGMENT_RATIONALE], text.rationale());
    EXPECT_EQ(streamed[v1::OUTPUT_SEGMENT_ANSWER], text.answer());
    EXPECT_FALSE(text.rationale().empty());
  }
  // A tokenizer that can spell "-->" (the built-in one cannot; a CoT student's tokenizer is trained on
  // its targets, which contain it).
  student::TrainOptions train;
  train.vocab_size = 40;
  absl::StatusOr<std::unique_ptr<student::Tokenizer>> cot_tokenizer = student::Tokenizer::Train(
      {"3 plus 4 is 7 --> 7 END", "10 minus 2 is 8 --> 8 END", "so the answer is 5 --> 5 END"}, train);
  ASSERT_TRUE(cot_tokenizer.ok()) << cot_tokenizer.status();
  for (bool rationale : {true, false}) {
    const student::Tokenizer& tok = **cot_tokenizer;
    OutputText text(tok, OutputLayout::kCot, rationale);
    const std::string cot = dataset::CotTarget("3 plus 4 is 7", "7");
    auto streamed = Stream(tok, OutputLayout::kCot, rationale, {cot}, &text);
    const std::string decoded = tok.Decode(tok.Encode(cot, false));
    EXPECT_EQ(text.rationale(), dataset::CotRationale(decoded));
    EXPECT_EQ(text.answer(), dataset::CotAnswer(decoded));
    EXPECT_EQ(streamed[v1::OUTPUT_SEGMENT_ANSWER], text.answer());
    EXPECT_EQ(streamed[v1::OUTPUT_SEGMENT_RATIONALE], rationale ? text.rationale() : "");
  }
}

TEST_F(EngineTest, PrepareRejectsBadRequestsNamingTheField) {
  v1::LoadModelRequest load;
  load.set_name("m");
  load.set_version("v1");
  load.mutable_artifact()->set_uri(dir_.path());
  ServingOptions options;
  options.max_input_tokens = 16;
  absl::StatusOr<std::shared_ptr<ServedModel>> model = ServedModel::Load(load, dir_.path(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->info().objective(), v1::OBJECTIVE_STANDARD);
  EXPECT_EQ((*model)->info().max_input_tokens(), 16);
  struct Case {
    std::function<void(GenerationAsk&)> change;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](GenerationAsk& a) { a.input = "  "; }, "input: required"},
      {[](GenerationAsk& a) { a.input = std::string(200, 'x') + " y z w v u t s r q p o n m l"; }, "input: "},
      {[](GenerationAsk& a) { a.sampling.set_temperature(-1); }, "sampling.temperature"},
      {[](GenerationAsk& a) { a.sampling.set_top_p(0); }, "sampling.top_p"},
      {[](GenerationAsk& a) { a.sampling.set_top_p(1.5); }, "sampling.top_p"},
      {[](GenerationAsk& a) { a.sampling.set_top_k(-2); }, "sampling.top_k"},
      {[](GenerationAsk& a) { a.sampling.set_max_new_tokens(-1); }, "sampling.max_new_tokens"},
      {[](GenerationAsk& a) { a.sampling.set_max_new_tokens(100000); }, "sampling.max_new_tokens"},
      {[](GenerationAsk& a) { a.sampling.add_stop("x"); }, "sampling.stop"},
      {[](GenerationAsk& a) { a.num_beams = 17; }, "num_beams"},
      {[](GenerationAsk& a) {
         a.num_beams = 2;
         a.sampling.set_temperature(0.7f);
       },
       "num_beams"},
      {[](GenerationAsk& a) { a.include_rationale = true; }, "include_rationale"},
  };
  for (const Case& c : cases) {
    GenerationAsk ask;
    ask.input = "what is 2 plus 2";
    c.change(ask);
    absl::StatusOr<PreparedRequest> prepared = (*model)->Prepare(ask);
    EXPECT_TRUE(absl::IsInvalidArgument(prepared.status())) << c.field << ": " << prepared.status();
    EXPECT_THAT(std::string(prepared.status().message()), HasSubstr(c.field));
  }
  GenerationAsk ok;
  ok.input = "2 \xff\xfe";  // invalid UTF-8 is tokenized (as unknown), never a crash
  absl::StatusOr<PreparedRequest> prepared = (*model)->Prepare(ok);
  EXPECT_TRUE(prepared.ok()) << prepared.status();
}

}  // namespace
}  // namespace distill::inference
