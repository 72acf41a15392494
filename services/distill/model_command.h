#ifndef DISTILL_SERVICES_DISTILL_MODEL_COMMAND_H_
#define DISTILL_SERVICES_DISTILL_MODEL_COMMAND_H_

// `distill model`: inspect, run and create student checkpoints (Hugging Face model directories: config.json,
// model.safetensors, spiece.model; see common/student/student.h).
//
//   distill model info DIR [--json]
//   distill model generate DIR --text "…" [--text-file FILE] [--objective standard|step_by_step|cot_sequence]
//                          [--explain] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
//                          [--seed S] [--num-beams B]
//   distill model logits DIR --input-ids 1,2,3 --decoder-input-ids 0,5
//   distill model init --preset tiny|mini|small|base --out DIR [--vocab-from FILE] [--seed S]
//
// `generate` renders each text as the objective's answer input ("predict: …" for step_by_step, "… ###" for
// cot_sequence; --explain asks a step_by_step student for its rationale instead) and prints one generated
// text per line. `logits` prints {"shape": [1, T, V], "values": [...]}: the float32 logits of every decoder
// position, row-major, for numerical parity checks against another implementation. `init` writes a randomly
// initialised checkpoint; --vocab-from takes a spiece.model, or a text or JSON-lines file to train a
// unigram tokenizer on (without it, a small built-in corpus is used — fine for experiments only).

#include <ostream>
#include <string>
#include <vector>

namespace distill::services {

// Returns the exit code: 0 on success, 1 when the model fails, 2 for bad flags or files.
int RunModel(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace distill::services

#endif  // DISTILL_SERVICES_DISTILL_MODEL_COMMAND_H_
