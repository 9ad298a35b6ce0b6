// The run mark's message; the format is in run_mark.h.
#include "executor/core/run_mark.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mpsim::executor {
namespace {

namespace pb = google::protobuf;

std::string to_json(const pb::Message& message) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!pb::util::MessageToJsonString(message, &json, options).ok())
    throw std::runtime_error("run mark: cannot print " + message.GetTypeName());
  return json;
}

// `object[field]` into `message`; throws naming the field.
void from_json(const nlohmann::json& object, const char* field, pb::Message* message) {
  if (!object.contains(field) || !object[field].is_object())
    throw std::invalid_argument(std::string("run mark: field '") + field +
                                "' missing or not an object");
  const pb::util::Status status = pb::util::JsonStringToMessage(object[field].dump(), message);
  if (!status.ok())
    throw std::invalid_argument(std::string("run mark: field '") + field +
                                "': " + std::string(status.message()));
}

}  // namespace

std::string format_run_mark(const spec::ModelSpec& model, const spec::ParallelConfig& parallel) {
  return std::string(kRunMarkPrefix) + "{\"model\":" + to_json(model) +
         ",\"parallel\":" + to_json(parallel) + "}";
}

std::optional<RunMark> parse_run_mark(std::string_view text) {
  if (!text.starts_with(kRunMarkPrefix)) return std::nullopt;
  const nlohmann::json object =
      nlohmann::json::parse(text.substr(kRunMarkPrefix.size()), nullptr, false);
  if (!object.is_object())
    throw std::invalid_argument("run mark: '" + std::string(text.substr(0, 80)) +
                                "...' is not a JSON object after " + std::string(kRunMarkPrefix));
  for (const auto& [key, value] : object.items())
    if (key != "model" && key != "parallel")
      throw std::invalid_argument("run mark: unknown field '" + key +
                                  "', expected model and parallel");
  RunMark mark;
  from_json(object, "model", &mark.model);
  from_json(object, "parallel", &mark.parallel);
  return mark;
}

}  // namespace mpsim::executor
