#include "tools/mpsim/megatron_input.h"

#include <filesystem>
#include <ostream>

#include "common/text.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "simulator/spec/text_format.h"

namespace mpsim::cli {

spec::MegatronRun read_megatron_input(const std::string& value, int64_t gpus,
                                      const spec::Hardware& hardware, std::ostream& err,
                                      const std::string& command) {
  std::string text = value, source = "--megatron-args";
  if (value.find("--") == std::string::npos) {
    if (!std::filesystem::is_regular_file(value)) {
      throw spec::SpecError(value, 0, "",
                            "no such file; expected Megatron-LM arguments (--num-layers ...) or "
                            "a file holding them");
    }
    text = spec::read_text_file(value);
    source = value;
  }
  spec::MegatronRun run = spec::parse_megatron_args(text, source, gpus);
  if (source != "--megatron-args")
    run.model.set_name(std::filesystem::path(source).stem().string());
  try {
    run.config = spec::validate_parallel_config(run.config, run.model, hardware);
  } catch (const spec::FieldError& e) {
    const std::string flag = spec::megatron_flag_of_field(e.field());
    throw spec::SpecError(source, 0, flag.empty() ? e.field() : flag, e.message());
  }
  const spec::MegatronNotes& n = run.notes;
  const std::string prefix = command + ": " + source + ": ";
  auto line = [&](const char* what, const std::vector<std::string>& items) {
    if (!items.empty()) err << prefix << what << ": " << common::join(items, ", ") << "\n";
  };
  line("not modelled (the prediction ignores them)", n.not_modelled);
  line("unknown to mpsim", n.unknown);
  line("no effect on an iteration", n.no_effect);
  line("words that are no flag's value", n.stray_words);
  for (const std::string& note : n.adjusted) err << prefix << note << "\n";
  return run;
}

}  // namespace mpsim::cli
