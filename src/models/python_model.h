// The Python backend of Model: a pool of /usr/bin/python3 worker processes,
// each holding one copy of a model folder's model (a joblib/pickle file with
// a scikit-learn estimator or Pipeline, or a model.py defining load(path)
// and predict(rows)), answering prediction frames over two dedicated pipes
// (python_worker.py describes the protocol).
//
// A Predict call takes one idle worker, so `workers` calls run at once. A
// worker that crashes or passes the call deadline fails that call only
// (Unavailable) and is replaced in the background by a supervisor thread,
// which also replaces workers that die while idle and recycles a worker
// after `recycle_after` calls without failing any call. Worker stderr is
// copied to the server's stderr, one prefixed line at a time.
//
// Ownership: the PythonModel owns its processes; destroying it stops and
// reaps every one (request pipe closed, SIGKILL after a short grace).
// REQUIRES: no Predict call is in flight when it is destroyed, and the host
// does not ignore SIGCHLD. Thread safety: every method is safe to call
// concurrently.
#ifndef SLIPWAY_MODELS_PYTHON_MODEL_H_
#define SLIPWAY_MODELS_PYTHON_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "models/model.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct PythonPoolOptions {
  std::string python = "/usr/bin/python3";
  // Processes in the pool, >= 1.
  int workers = 2;
  // Predict calls before a worker is replaced; 0 = never.
  int64_t recycle_after = 10000;
  // One Predict call; a worker that takes longer is killed.
  int64_t timeout_ms = 30000;
  // A worker's start-up (import + model load).
  int64_t load_timeout_ms = 120000;
  // Versions the model was trained or imported with, e.g. {"python": "3.11.2",
  // "scikit-learn": "1.2.1", "numpy": "1.24.2"}; when a worker reports others,
  // one warning (core/logging.h LogWarning, event
  // "models.python_version_mismatch") names both.
  nlohmann::json expected_versions = nlohmann::json::object();
};

// `dir` is an unpacked model folder: either a joblib/pickle file `file` (e.g.
// "model.joblib", "model.pkl") holding an object with predict / predict_proba
// (a scikit-learn estimator or Pipeline, with its preprocessing), or `file`
// empty and dir/model.py defining load(path) and predict(rows) (rows: a float64
// numpy array n x features; returns n values or n x width). Starts the pool,
// waits until every worker has loaded the model, and makes one trial prediction
// on a row of zeros (checks the output count); errors name the file and the
// fix.
//
// Outputs: binary classification predict_proba[:, 1] (predict for an
// estimator without predict_proba), multiclass predict_proba, regression
// predict; model.py's predict result as is. An estimator that records
// n_features_in_, feature_names_in_ or classes_ must agree with `signature`
// (feature count, feature names in order, class count). InvalidArgument for
// every load failure (missing file, unpicklable file, no predict, worker
// exit or timeout during load, wrong output count). expected_versions is
// compared with the packages the loaded model imported (info()["versions"]).
absl::StatusOr<std::unique_ptr<Model>> LoadPythonModel(
    const std::string& dir, const std::string& file, Signature signature,
    const PythonPoolOptions& options);

// The versions a worker reports for `dir`'s model without keeping it: python,
// numpy, scikit-learn, joblib (and torch when importable) as {"name":
// "version"}. Starts one worker with no model; options.python and
// load_timeout_ms apply.
absl::StatusOr<nlohmann::json> PythonRuntimeVersions(
    const PythonPoolOptions& options);

// A Python model's classes_ (PythonModel::info()["classes"]) as signature
// class labels: numbers as JSON prints them, strings as they are.
std::vector<std::string> PythonClassLabels(const nlohmann::json& classes);

class PythonWorkerProcess;

class PythonModel : public Model {
 public:
  ~PythonModel() override;

  std::string_view format() const override { return kPythonFormat; }
  // Unavailable when no worker frees up within timeout_ms, or when the
  // worker crashed or did not answer within timeout_ms (it is replaced);
  // InvalidArgument when the model raised (Python's exception, last line)
  // or returned a wrong number of values.
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override;
  int max_concurrency() const override { return options_.workers; }
  bool blocking() const override { return true; }
  // One entry per slot; pid 0 while a replacement is starting.
  std::vector<ModelWorker> Workers() const override;

  // What the model's workers report: {"versions": {"python": ...,
  // "numpy": ...}} with "scikit-learn", "joblib" and "torch" too when the
  // model imported them (a pickled model always imports joblib and, for a
  // scikit-learn object, scikit-learn), plus, for a pickled
  // object that has them, "feature_names_in" (strings), "classes" (as
  // Python gives them: numbers or strings) and "n_features_in".
  const nlohmann::json& info() const { return info_; }
  // dir/file, or dir/model.py: how messages name the model.
  const std::string& path() const { return path_; }

 private:
  friend absl::StatusOr<std::unique_ptr<Model>> LoadPythonModel(
      const std::string& dir, const std::string& file, Signature signature,
      const PythonPoolOptions& options);

  struct Slot {
    std::unique_ptr<PythonWorkerProcess> process;  // null while replaced
    bool busy = false;      // a Predict call owns `process`
    bool starting = false;  // the supervisor is starting a replacement
    int64_t requests = 0;   // calls the current process answered
    int64_t restarts = 0;
    int failed_starts = 0;        // in a row; sets the retry back-off
    int64_t retry_at_micros = 0;  // monotonic; no start before then
  };

  PythonModel(Signature signature, std::string dir, std::string file,
              PythonPoolOptions options);

  // Starts every worker, waits for their hellos and checks the model
  // against the signature; then starts the supervisor.
  absl::Status StartPool();
  absl::StatusOr<std::unique_ptr<PythonWorkerProcess>> SpawnWorker(
      int slot) const;
  absl::Status CheckInfo() const;
  void WarnVersionMismatches() const;

  // Marks an idle, live worker busy and gives its slot and process, waiting
  // until `deadline_micros` (monotonic) when all are busy.
  absl::Status AcquireSlot(int64_t deadline_micros, int* slot,
                           PythonWorkerProcess** worker) const;
  // Gives back a slot after a successful call; recycles its worker when it
  // has answered recycle_after calls.
  void ReleaseSlot(int slot) const;
  // Takes a slot's process after a failed call; the supervisor replaces it.
  std::unique_ptr<PythonWorkerProcess> TakeFailedWorker(int slot) const;

  bool HasIdleWorker() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SupervisorHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Supervise();

  const std::string dir_;
  const std::string file_;
  const std::string path_;
  const PythonPoolOptions options_;
  const uint32_t kind_;  // the request kind the signature's task asks for
  nlohmann::json info_;  // set by StartPool, then read-only

  // The supervisor sleeps in poll() while a replacement loads; a byte here
  // wakes it for shutdown.
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  std::thread supervisor_;

  mutable absl::Mutex mu_;
  mutable std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  // Workers to stop gracefully (recycled, or found dead while idle).
  mutable std::vector<std::unique_ptr<PythonWorkerProcess>> retiring_
      ABSL_GUARDED_BY(mu_);
  mutable size_t next_slot_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace slipway

#endif  // SLIPWAY_MODELS_PYTHON_MODEL_H_
