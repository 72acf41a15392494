#include "tests/deploy/compose/deploy_checks.h"

#include <glob.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace distill::deploycheck {
namespace {

namespace fs = std::filesystem;

std::string Trim(absl::string_view text) { return std::string(absl::StripAsciiWhitespace(text)); }

// The words of a compose `command` / healthcheck `test`: a list as is, a string split like a shell would.
std::vector<std::string> Words(const YAML::Node& node) {
  std::vector<std::string> words;
  if (!node) return words;
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (item.IsScalar()) words.push_back(item.Scalar());
    }
  } else if (node.IsScalar()) {
    words = SplitArgs(node.Scalar());
  }
  return words;
}

bool IsTrue(const YAML::Node& node) {
  if (!node || !node.IsScalar()) return false;
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    return false;
  }
}

// Compose's `user`: "uid", "uid:gid", "name" or "name:group"; root is "root" or uid 0.
bool IsRootUser(const std::string& user) {
  const std::string name = Trim(user.substr(0, user.find(':')));
  return name.empty() || name == "root" || name == "0";
}

// Translates a .dockerignore pattern (already without "!" and outer slashes) into a regular expression
// over slash-separated paths.
std::regex PatternRegex(const std::string& pattern) {
  std::string re;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        ++i;
        if (i + 1 < pattern.size() && pattern[i + 1] == '/') {
          ++i;
          re += "(.*/)?";
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c == '?') {
      re += "[^/]";
    } else if (std::string_view(".+()^$|{}[]\\").find(c) != std::string_view::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  return std::regex(re);
}

std::string CleanContextPath(std::string path) {
  while (absl::StartsWith(path, "./")) path = path.substr(2);
  while (absl::StartsWith(path, "/")) path = path.substr(1);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// The names of the variables `text` expands: "$NAME" or "${NAME...}".
std::vector<std::string> Variables(const std::string& text) {
  std::vector<std::string> names;
  static const std::regex kVariable(R"(\$\{?([A-Za-z_][A-Za-z0-9_]*))");
  for (std::sregex_iterator it(text.begin(), text.end(), kVariable), end; it != end; ++it) {
    names.push_back((*it)[1]);
  }
  return names;
}

std::string Basename(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace

YAML::Node ResolveMergeKeys(const YAML::Node& node) {
  if (node.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const YAML::Node& item : node) out.push_back(ResolveMergeKeys(item));
    return out;
  }
  if (!node.IsMap()) return YAML::Clone(node);
  YAML::Node out(YAML::NodeType::Map);
  std::set<std::string> keys;
  std::vector<YAML::Node> merged;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (key == "<<") {
      if (entry.second.IsMap()) {
        merged.push_back(ResolveMergeKeys(entry.second));
      } else if (entry.second.IsSequence()) {
        for (const YAML::Node& item : entry.second) merged.push_back(ResolveMergeKeys(item));
      }
      continue;
    }
    out[key] = ResolveMergeKeys(entry.second);
    keys.insert(key);
  }
  for (const YAML::Node& base : merged) {
    if (!base.IsMap()) continue;
    for (const auto& entry : base) {
      const std::string key = entry.first.Scalar();
      if (keys.insert(key).second) out[key] = entry.second;
    }
  }
  return out;
}

absl::StatusOr<YAML::Node> ParseCompose(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("compose file: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("compose file: the top level is not a mapping");
  YAML::Node resolved = ResolveMergeKeys(root);
  const YAML::Node& services = resolved["services"];
  if (!services || !services.IsMap()) {
    return absl::InvalidArgumentError("compose file: no `services` mapping");
  }
  return resolved;
}

std::vector<std::string> CheckComposeServices(const YAML::Node& compose) {
  std::vector<std::string> problems;
  const YAML::Node services = compose["services"];
  for (const auto& entry : services) {
    const std::string name = entry.first.Scalar();
    const YAML::Node service = entry.second;
    const std::string where = absl::StrCat("service ", name, ": ");
    if (!service.IsMap()) {
      problems.push_back(where + "not a mapping");
      continue;
    }
    if (!service["image"] && !service["build"]) problems.push_back(where + "has neither image nor build");
    const YAML::Node healthcheck = service["healthcheck"];
    if (!healthcheck || !healthcheck.IsMap() || !healthcheck["test"] || Words(healthcheck["test"]).empty()) {
      problems.push_back(where + "has no healthcheck test");
    } else if (IsTrue(healthcheck["disable"])) {
      problems.push_back(where + "disables its healthcheck");
    }
    const YAML::Node user = service["user"];
    if (!user || !user.IsScalar()) {
      problems.push_back(where + "sets no user (it would run as the image's user, maybe root)");
    } else if (IsRootUser(user.Scalar())) {
      problems.push_back(where + "runs as root (user \"" + user.Scalar() + "\")");
    }
    if (!IsTrue(service["read_only"])) problems.push_back(where + "root file system is not read_only");
    const YAML::Node depends_on = service["depends_on"];
    if (depends_on && depends_on.IsSequence()) {
      problems.push_back(where +
                         "depends_on in short syntax only waits for start; use condition: service_healthy");
    } else if (depends_on && depends_on.IsMap()) {
      for (const auto& dependency : depends_on) {
        const std::string target = dependency.first.Scalar();
        const YAML::Node other = services[target];
        if (!other) {
          problems.push_back(where + "depends on unknown service \"" + target + "\"");
          continue;
        }
        const YAML::Node condition = dependency.second["condition"];
        if (!condition || condition.Scalar() != "service_healthy") {
          problems.push_back(where + "depends on \"" + target + "\" without condition: service_healthy");
        }
        if (!other["healthcheck"]) {
          problems.push_back(where + "depends on \"" + target + "\", which has no healthcheck");
        }
      }
    }
  }
  return problems;
}

std::vector<Mount> ServiceMounts(const YAML::Node& service) {
  std::vector<Mount> mounts;
  const YAML::Node volumes = service["volumes"];
  if (!volumes || !volumes.IsSequence()) return mounts;
  for (const YAML::Node& volume : volumes) {
    Mount mount;
    if (volume.IsScalar()) {
      std::vector<std::string> parts = absl::StrSplit(volume.Scalar(), ':');
      if (parts.size() == 1) {
        mount.target = parts[0];
      } else {
        mount.source = parts[0];
        mount.target = parts[1];
        if (parts.size() > 2) {
          for (absl::string_view option : absl::StrSplit(parts[2], ',')) {
            if (option == "ro") mount.read_only = true;
          }
        }
      }
      mount.bind = absl::StartsWith(mount.source, "/") || absl::StartsWith(mount.source, "./") ||
                   absl::StartsWith(mount.source, "../") || absl::StartsWith(mount.source, "~") ||
                   mount.source == "." || mount.source == "..";
    } else if (volume.IsMap()) {
      if (volume["source"]) mount.source = volume["source"].Scalar();
      if (volume["target"]) mount.target = volume["target"].Scalar();
      mount.bind = volume["type"] && volume["type"].Scalar() == "bind";
      mount.read_only = IsTrue(volume["read_only"]);
    }
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

std::vector<std::string> CheckMounts(const YAML::Node& compose, const std::string& base_dir) {
  std::vector<std::string> problems;
  const YAML::Node declared = compose["volumes"];
  for (const auto& entry : compose["services"]) {
    const std::string where = absl::StrCat("service ", entry.first.Scalar(), ": ");
    for (const Mount& mount : ServiceMounts(entry.second)) {
      if (mount.source.empty()) continue;
      if (mount.bind) {
        if (absl::StartsWith(mount.source, "/") || absl::StartsWith(mount.source, "~")) {
          problems.push_back(where + "bind mount " + mount.source + " is outside the repository");
          continue;
        }
        const fs::path path = fs::path(base_dir) / mount.source;
        std::error_code error;
        if (!fs::exists(path, error)) {
          problems.push_back(where + "bind mount source " + mount.source + " does not exist (" +
                             path.string() + ")");
        }
      } else if (!declared || !declared.IsMap() || !declared[mount.source]) {
        problems.push_back(where + "volume \"" + mount.source +
                           "\" is not declared under the top-level volumes");
      }
    }
  }
  return problems;
}

int HealthcheckPort(const YAML::Node& service) {
  const YAML::Node healthcheck = service["healthcheck"];
  if (!healthcheck || !healthcheck.IsMap()) return 0;
  const std::vector<std::string> words = Words(healthcheck["test"]);
  bool distillctl = false, health = false;
  std::string address;
  for (size_t i = 0; i < words.size(); ++i) {
    if (Basename(words[i]) == "distillctl") distillctl = true;
    if (distillctl && words[i] == "health") health = true;
    if (words[i] == "--address" && i + 1 < words.size()) address = words[i + 1];
    if (absl::StartsWith(words[i], "--address=")) address = words[i].substr(strlen("--address="));
  }
  if (!distillctl || !health || address.empty()) return 0;
  return SplitHostPort(address).second;
}

std::string CommandFlag(const YAML::Node& service, const std::string& flag) {
  const std::vector<std::string> words = Words(service["command"]);
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == flag && i + 1 < words.size()) return words[i + 1];
    if (absl::StartsWith(words[i], flag + "=")) return words[i].substr(flag.size() + 1);
  }
  return "";
}

std::vector<int> PublishedContainerPorts(const YAML::Node& service) {
  std::vector<int> ports;
  const YAML::Node list = service["ports"];
  if (!list || !list.IsSequence()) return ports;
  for (const YAML::Node& entry : list) {
    std::string container;
    if (entry.IsMap() && entry["target"]) {
      container = entry["target"].Scalar();
    } else if (entry.IsScalar()) {
      const std::string text = entry.Scalar();
      container = text.substr(text.rfind(':') == std::string::npos ? 0 : text.rfind(':') + 1);
      container = container.substr(0, container.find('/'));
    }
    int port = 0;
    ports.push_back(absl::SimpleAtoi(container, &port) ? port : 0);
  }
  return ports;
}

std::pair<std::string, int> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {address, 0};
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) port = 0;
  return {address.substr(0, colon), port};
}

absl::StatusOr<std::vector<ScrapeTarget>> ParseScrapeTargets(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("prometheus.yml: ", e.what()));
  }
  std::vector<ScrapeTarget> targets;
  if (!root.IsMap() || !root["scrape_configs"]) return targets;
  for (const YAML::Node& job : root["scrape_configs"]) {
    const std::string name = job["job_name"] ? job["job_name"].Scalar() : "";
    if (!job["static_configs"]) continue;
    for (const YAML::Node& group : job["static_configs"]) {
      if (!group["targets"]) continue;
      for (const YAML::Node& target : group["targets"]) {
        auto [host, port] = SplitHostPort(target.Scalar());
        if (host.empty() || port <= 0) {
          return absl::InvalidArgumentError(absl::StrCat("prometheus.yml: job ", name, ": target \"",
                                                         target.Scalar(), "\" is not host:port"));
        }
        targets.push_back({name, host, port});
      }
    }
  }
  return targets;
}

std::vector<Instruction> ParseDockerfile(const std::string& text) {
  std::vector<Instruction> instructions;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  Instruction current;
  bool continuing = false;
  while (std::getline(in, line)) {
    ++number;
    std::string trimmed = Trim(line);
    // Comment lines and empty lines are dropped, also inside a continued instruction.
    if (trimmed.empty() || absl::StartsWith(trimmed, "#")) continue;
    const bool continues = trimmed.back() == '\\';
    if (continues) trimmed = Trim(trimmed.substr(0, trimmed.size() - 1));
    if (!continuing) {
      current = Instruction{};
      current.line = number;
      const size_t space = trimmed.find_first_of(" \t");
      current.keyword = absl::AsciiStrToUpper(trimmed.substr(0, space));
      current.args = space == std::string::npos ? "" : Trim(trimmed.substr(space));
    } else {
      current.args = Trim(absl::StrCat(current.args, " ", trimmed));
    }
    continuing = continues;
    if (!continuing) instructions.push_back(current);
  }
  if (continuing) instructions.push_back(current);
  return instructions;
}

std::vector<std::string> SplitArgs(const std::string& args) {
  std::vector<std::string> words;
  const std::string trimmed = Trim(args);
  if (absl::StartsWith(trimmed, "[")) {
    try {
      const YAML::Node list = YAML::Load(trimmed);
      if (list.IsSequence()) {
        for (const YAML::Node& item : list) words.push_back(item.Scalar());
        return words;
      }
    } catch (const YAML::Exception&) {
      // Not a JSON array: Docker runs it as a shell command.
    }
  }
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : trimmed) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

bool DockerIgnored(const std::string& path, const std::vector<std::string>& patterns) {
  const std::string clean = CleanContextPath(path);
  if (clean.empty() || clean == ".") return false;
  std::vector<std::string> candidates;
  for (size_t slash = clean.find('/'); slash != std::string::npos; slash = clean.find('/', slash + 1)) {
    candidates.push_back(clean.substr(0, slash));
  }
  candidates.push_back(clean);
  bool ignored = false;
  for (const std::string& raw : patterns) {
    std::string pattern = Trim(raw);
    if (pattern.empty() || absl::StartsWith(pattern, "#")) continue;
    const bool negated = absl::StartsWith(pattern, "!");
    if (negated) pattern = Trim(pattern.substr(1));
    pattern = CleanContextPath(pattern);
    if (pattern.empty()) continue;
    const std::regex re = PatternRegex(pattern);
    for (const std::string& candidate : candidates) {
      if (std::regex_match(candidate, re)) {
        ignored = !negated;
        break;
      }
    }
  }
  return ignored;
}

std::string ArgDefault(const std::string& dockerfile_text, const std::string& name) {
  for (const Instruction& instruction : ParseDockerfile(dockerfile_text)) {
    if (instruction.keyword != "ARG") continue;
    const std::string& args = instruction.args;
    if (!absl::StartsWith(args, name + "=")) continue;
    std::string value = Trim(args.substr(name.size() + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

std::vector<std::string> SignificantLines(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const std::string trimmed = Trim(line);
    if (!trimmed.empty() && !absl::StartsWith(trimmed, "#")) lines.push_back(trimmed);
  }
  return lines;
}

std::vector<std::string> CheckDockerfile(const std::string& name, const std::string& text,
                                         const std::string& context_dir,
                                         const std::vector<std::string>& dockerignore) {
  std::vector<std::string> problems;
  struct Stage {
    std::string name;
    std::vector<Instruction> instructions;
  };
  std::vector<Stage> stages;
  std::set<std::string> global_args;
  for (const Instruction& instruction : ParseDockerfile(text)) {
    const std::string where = absl::StrCat(name, ":", instruction.line, ": ");
    const std::vector<std::string> words = SplitArgs(instruction.args);
    if (instruction.keyword == "ARG" && stages.empty()) {
      if (!words.empty()) global_args.insert(words[0].substr(0, words[0].find('=')));
      continue;
    }
    if (instruction.keyword == "FROM") {
      Stage stage;
      size_t i = 0;
      while (i < words.size() && absl::StartsWith(words[i], "--")) ++i;
      if (i >= words.size()) {
        problems.push_back(where + "FROM names no image");
      } else {
        for (const std::string& variable : Variables(words[i])) {
          if (!global_args.count(variable)) {
            problems.push_back(where + "FROM uses $" + variable +
                               ", which no ARG before the first FROM declares");
          }
        }
        if (i + 2 < words.size() && absl::AsciiStrToUpper(words[i + 1]) == "AS") {
          stage.name = absl::AsciiStrToLower(words[i + 2]);
        }
      }
      stages.push_back(std::move(stage));
      continue;
    }
    if (stages.empty()) {
      problems.push_back(where + instruction.keyword + " before the first FROM");
      continue;
    }
    stages.back().instructions.push_back(instruction);
    if (instruction.keyword != "COPY" && instruction.keyword != "ADD") continue;
    std::string from;
    size_t i = 0;
    for (; i < words.size() && absl::StartsWith(words[i], "--"); ++i) {
      if (absl::StartsWith(words[i], "--from="))
        from = absl::AsciiStrToLower(words[i].substr(strlen("--from=")));
    }
    if (words.size() < i + 2) {
      problems.push_back(where + instruction.keyword + " needs a source and a destination");
      continue;
    }
    if (!from.empty()) {
      bool known = false;
      int index = -1;
      for (size_t s = 0; s + 1 < stages.size(); ++s) known = known || stages[s].name == from;
      if (absl::SimpleAtoi(from, &index))
        known = index >= 0 && static_cast<size_t>(index) + 1 < stages.size();
      if (!known)
        problems.push_back(where + instruction.keyword + " --from=" + from + " names no earlier stage");
      continue;
    }
    for (size_t s = i; s + 1 < words.size(); ++s) {
      const std::string& source = words[s];
      if (instruction.keyword == "ADD" &&
          (absl::StartsWith(source, "http://") || absl::StartsWith(source, "https://"))) {
        continue;
      }
      const std::string full = (fs::path(context_dir) / CleanContextPath(source)).string();
      bool exists = false;
      if (source.find_first_of("*?[") != std::string::npos) {
        glob_t matches{};
        exists = ::glob(full.c_str(), 0, nullptr, &matches) == 0 && matches.gl_pathc > 0;
        ::globfree(&matches);
      } else {
        std::error_code error;
        exists = fs::exists(full, error);
      }
      if (!exists) problems.push_back(where + instruction.keyword + " source " + source + " does not exist");
      if (DockerIgnored(source, dockerignore)) {
        problems.push_back(where + instruction.keyword + " source " + source +
                           " is excluded by .dockerignore");
      }
    }
  }
  if (stages.empty()) {
    problems.push_back(name + ": no FROM");
    return problems;
  }
  const Stage& final_stage = stages.back();
  const Instruction* user = nullptr;
  const Instruction* healthcheck = nullptr;
  const Instruction* entrypoint = nullptr;
  for (const Instruction& instruction : final_stage.instructions) {
    if (instruction.keyword == "USER") user = &instruction;
    if (instruction.keyword == "HEALTHCHECK") healthcheck = &instruction;
    if (instruction.keyword == "ENTRYPOINT") entrypoint = &instruction;
  }
  if (user == nullptr) {
    problems.push_back(name + ": the final stage has no USER, so it runs as root");
  } else if (IsRootUser(user->args)) {
    problems.push_back(
        absl::StrCat(name, ":", user->line, ": the final stage runs as root (USER ", user->args, ")"));
  }
  if (healthcheck == nullptr || absl::AsciiStrToUpper(Trim(healthcheck->args)) == "NONE") {
    problems.push_back(name + ": the final stage has no HEALTHCHECK");
  }
  // The programs ENTRYPOINT and HEALTHCHECK run must be put in place by the final stage's COPYs.
  auto provided = [&](const std::string& program) {
    for (const Instruction& instruction : final_stage.instructions) {
      if (instruction.keyword != "COPY" && instruction.keyword != "ADD") continue;
      const std::vector<std::string> words = SplitArgs(instruction.args);
      size_t i = 0;
      while (i < words.size() && absl::StartsWith(words[i], "--")) ++i;
      if (words.size() < i + 2) continue;
      const std::string& destination = words.back();
      if (destination == program) return true;
      if (absl::EndsWith(destination, "/")) {
        for (size_t s = i; s + 1 < words.size(); ++s) {
          if (destination + Basename(words[s]) == program) return true;
        }
      }
    }
    return false;
  };
  if (entrypoint == nullptr) {
    problems.push_back(name + ": the final stage has no ENTRYPOINT");
  } else if (!absl::StartsWith(Trim(entrypoint->args), "[")) {
    problems.push_back(absl::StrCat(name, ":", entrypoint->line, ": ENTRYPOINT is not in exec form"));
  } else {
    const std::vector<std::string> words = SplitArgs(entrypoint->args);
    if (words.empty() || (absl::StartsWith(words[0], "/") && !provided(words[0]))) {
      problems.push_back(
          absl::StrCat(name, ":", entrypoint->line, ": ENTRYPOINT ",
                       words.empty() ? "is empty" : words[0] + " is copied by no COPY of the final stage"));
    }
  }
  if (healthcheck != nullptr) {
    const std::string args = healthcheck->args;
    const size_t cmd = args.find("CMD");
    if (cmd != std::string::npos) {
      const std::vector<std::string> words = SplitArgs(args.substr(cmd + 3));
      if (!words.empty() && absl::StartsWith(words[0], "/") && !provided(words[0])) {
        problems.push_back(absl::StrCat(name, ":", healthcheck->line, ": HEALTHCHECK runs ", words[0],
                                        ", which no COPY of the final stage provides"));
      }
    }
  }
  return problems;
}

std::map<std::string, std::string> ShellCaseEchoes(const std::string& script, const std::string& function) {
  std::map<std::string, std::string> arms;
  const std::regex start("^\\s*" + function + "\\s*\\(\\)\\s*\\{\\s*$");
  static const std::regex kArm(R"re(^\s*([^)#]+)\)\s*echo\s+"?([^";]*?)"?\s*;;)re");
  bool inside = false;
  for (absl::string_view view : absl::StrSplit(script, '\n')) {
    const std::string line(view);
    if (!inside) {
      inside = std::regex_match(line, start);
      continue;
    }
    if (line == "}") break;
    std::smatch match;
    if (!std::regex_search(line, match, kArm)) continue;
    const std::string value = Trim(match[2].str());
    if (value.empty()) continue;
    for (absl::string_view name : absl::StrSplit(match[1].str(), '|')) {
      const std::string pattern = Trim(name);
      if (!pattern.empty()) arms[pattern] = value;
    }
  }
  return arms;
}

std::vector<std::string> BashArray(const std::string& script, const std::string& name) {
  std::vector<std::string> words;
  bool inside = false;
  for (absl::string_view view : absl::StrSplit(script, '\n')) {
    std::string line = Trim(view);
    if (!inside) {
      if (!absl::StartsWith(line, name + "=(")) continue;
      inside = true;
      line = line.substr(name.size() + 2);
    }
    if (const size_t comment = line.find('#'); comment != std::string::npos) line = line.substr(0, comment);
    const size_t close = line.find(')');
    for (const std::string& word : SplitArgs(line.substr(0, close))) words.push_back(word);
    if (close != std::string::npos) break;
  }
  return words;
}

std::set<std::string> CMakeBinaries(const std::string& dir) {
  std::set<std::string> names;
  static const std::regex kBinary(R"(distill_cc_binary\s*\(\s*NAME\s+([A-Za-z0-9_.+-]+))");
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string file = it->path().filename().string();
    if (it->is_directory() && (file == "build" || file == ".git" || file == "distill-data")) {
      it.disable_recursion_pending();
      continue;
    }
    if (file != "CMakeLists.txt") continue;
    std::ifstream in(it->path());
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    for (std::sregex_iterator m(text.begin(), text.end(), kBinary), last; m != last; ++m)
      names.insert((*m)[1]);
  }
  return names;
}

}  // namespace distill::deploycheck
