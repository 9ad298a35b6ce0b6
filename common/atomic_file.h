// Output files that are replaced whole or not at all: the content goes to a temporary file beside
// the target and is renamed over it once complete, so a reader of the target never sees a
// half-written file and a failure leaves whatever was there before untouched.
//
// Two forms:
//   write_file_atomically(path, text)  the whole text at once: a unique temporary file
//                                      (".<name>.tmp-XXXXXX" beside the target, mode 0644),
//                                      synced to disk before the rename;
//   ReplacingFile                      for writers that stream into a file or hand its name to a
//                                      library (the Chrome-trace writer, SQLite): the temporary
//                                      file is `target + ".tmp"`, commit() renames it over the
//                                      target, and it is removed unless committed.
// Failure: std::runtime_error naming the file and the system's reason; the temporary file is
// removed and the target is untouched.
#pragma once

#include <string>
#include <string_view>

namespace mpsim::common {

// Writes `text` to `path` through a synced temporary file in the same folder, renamed over `path`.
void write_file_atomically(const std::string& path, std::string_view text);

// The temporary file `target + ".tmp"` of one output and its publication.
class ReplacingFile {
 public:
  explicit ReplacingFile(std::string target);
  ~ReplacingFile();  // discard() unless committed
  ReplacingFile(const ReplacingFile&) = delete;
  ReplacingFile& operator=(const ReplacingFile&) = delete;

  const std::string& target_path() const { return target_; }
  const std::string& temp_path() const { return temp_; }
  // Renames the temporary file over the target. On failure removes the temporary file and throws
  // "<target>: cannot rename <temp> to it: <reason>". Idempotent once it succeeded.
  void commit();
  // Removes the temporary file if there is one (an unfinished one, or a stale one left by an
  // interrupted run); never fails.
  void discard() noexcept;
  bool committed() const { return committed_; }

 private:
  std::string target_;
  std::string temp_;
  bool committed_ = false;
};

}  // namespace mpsim::common
