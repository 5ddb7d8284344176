# Slipway's Python model worker, started by python_model.cc as
#   python3 -u -c <this script> <model dir> <model file>
# It loads one model, answers prediction frames until its request pipe
# closes, then exits. With an empty model dir it only reports versions.
#
# Protocol (little-endian u32 fields), on fds 3 (requests in) and 4
# (responses out) so that a model that prints cannot corrupt it:
#   hello    {magic, status, length} + UTF-8 text: JSON info when status is
#            0, else the load error.
#   request  {magic, kind, rows, cols} + rows*cols float32 (row-major).
#   response {magic, 0, rows, width} + rows*width float32, or
#            {magic, status != 0, length} + UTF-8 error text.
import importlib
import importlib.util
import json
import os
import platform
import struct
import sys
import traceback

MAGIC = 0x57504C53
KIND_PROBA_CLASS1 = 1  # binary classification: P(class 1)
KIND_PROBA = 2  # multiclass: every class probability
KIND_PREDICT = 3  # regression: the predicted value
STATUS_OK = 0
STATUS_ERROR = 1
REQUEST_FD = 3
RESPONSE_FD = 4


class LoadError(Exception):
    """A load failure whose message already names the file and the fix."""


def read_exact(n):
    chunks = []
    while n > 0:
        chunk = os.read(REQUEST_FD, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def write_all(data):
    view = memoryview(data)
    while view:
        view = view[os.write(RESPONSE_FD, view):]


def send_text(status, text):
    data = text.encode("utf-8", "replace")
    write_all(struct.pack("<III", MAGIC, status, len(data)) + data)


def exception_line(e):
    lines = "".join(traceback.format_exception_only(type(e), e)).strip()
    lines = lines.splitlines()
    return lines[-1] if lines else type(e).__name__


def versions(import_all):
    """python, numpy and, when the model imported them (or import_all), the
    packages models are made with; importing scikit-learn or torch only to
    name them would slow every worker's start."""
    found = {"python": platform.python_version()}
    for name, module in (("numpy", "numpy"), ("scikit-learn", "sklearn"),
                         ("joblib", "joblib"), ("torch", "torch")):
        if module != "numpy" and not import_all and module not in sys.modules:
            continue
        try:
            found[name] = str(importlib.import_module(module).__version__)
        except Exception:
            pass
    return found


def to_json_list(values):
    return [v.item() if hasattr(v, "item") else v for v in list(values)]


class PickledModel:
    """A joblib/pickle file holding an estimator or Pipeline."""

    def __init__(self, path):
        import joblib
        try:
            self.obj = joblib.load(path)
        except Exception as e:
            traceback.print_exc()
            raise LoadError(
                "cannot unpickle %s: %s; save the fitted model with "
                "joblib.dump(model, path) using the scikit-learn and numpy "
                "versions the server runs (%s)" %
                (path, exception_line(e), json.dumps(versions(False))))
        if not callable(getattr(self.obj, "predict", None)) and not callable(
                getattr(self.obj, "predict_proba", None)):
            kind = type(self.obj)
            raise LoadError(
                "%s holds a %s.%s, which has no predict or predict_proba "
                "method; dump the fitted estimator or Pipeline itself" %
                (path, kind.__module__, kind.__qualname__))

    def info(self):
        info = {}
        names = getattr(self.obj, "feature_names_in_", None)
        if names is not None:
            info["feature_names_in"] = [str(n) for n in names]
        classes = getattr(self.obj, "classes_", None)
        if classes is not None:
            info["classes"] = to_json_list(classes)
        n_features = getattr(self.obj, "n_features_in_", None)
        if n_features is not None:
            info["n_features_in"] = int(n_features)
        return info

    def predict(self, kind, x):
        proba = getattr(self.obj, "predict_proba", None)
        if kind == KIND_PROBA_CLASS1 and callable(proba):
            p = proba(x)
            # Anything but two columns goes back whole, so the count check
            # reports the real shape instead of a silent wrong column.
            return p[:, 1] if p.ndim == 2 and p.shape[1] == 2 else p
        if kind == KIND_PROBA:
            if not callable(proba):
                raise ValueError(
                    "%s has no predict_proba; a multiclass model must give "
                    "class probabilities" % type(self.obj).__qualname__)
            return proba(x)
        return self.obj.predict(x)


class ScriptModel:
    """A model.py defining load(path) and predict(rows)."""

    def __init__(self, model_dir, path):
        sys.path.insert(0, model_dir)
        spec = importlib.util.spec_from_file_location("model", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["model"] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            traceback.print_exc()
            raise LoadError("importing %s failed: %s; fix the module so that "
                            "'python3 %s' runs" % (path, exception_line(e), path))
        for name, signature in (("load", "load(path)"),
                                ("predict", "predict(rows)")):
            if not callable(getattr(module, name, None)):
                raise LoadError(
                    "%s defines no %s function; define %s (load gets the "
                    "model folder, predict a float64 numpy array n x "
                    "features and returns n values or n x width)" %
                    (path, name, signature))
        try:
            module.load(model_dir)
        except Exception as e:
            traceback.print_exc()
            raise LoadError("%s: load(%r) raised %s" %
                            (path, model_dir, exception_line(e)))
        self.module = module

    def info(self):
        return {}

    def predict(self, kind, x):
        return self.module.predict(x)


def load_model(model_dir, model_file):
    if model_file:
        path = os.path.join(model_dir, model_file)
        if not os.path.isfile(path):
            raise LoadError("model file %s does not exist; put the "
                            "joblib/pickle file there" % path)
        return PickledModel(path)
    path = os.path.join(model_dir, "model.py")
    if not os.path.isfile(path):
        raise LoadError("%s does not exist; give the joblib/pickle file's "
                        "name or add a model.py defining load(path) and "
                        "predict(rows)" % path)
    return ScriptModel(model_dir, path)


def serve(model):
    import numpy as np
    while True:
        header = read_exact(16)
        if header is None:
            return 0
        magic, kind, rows, cols = struct.unpack("<IIII", header)
        if magic != MAGIC:
            print("slipway python worker: bad request frame", file=sys.stderr)
            return 2
        payload = read_exact(rows * cols * 4)
        if payload is None:
            return 0
        x = np.frombuffer(payload, dtype="<f4").reshape(rows, cols)
        try:
            out = np.asarray(model.predict(kind, x.astype(np.float64)),
                             dtype=np.float64)
            if out.ndim == 2:
                n, width = out.shape
            else:
                n, width = out.size, 1
            data = np.ascontiguousarray(out, dtype="<f4").tobytes()
        except Exception as e:
            traceback.print_exc()
            send_text(STATUS_ERROR, exception_line(e))
            continue
        write_all(struct.pack("<IIII", MAGIC, STATUS_OK, n, width) + data)


def main():
    sys.stdout = sys.stderr
    model_dir, model_file = sys.argv[1], sys.argv[2]
    if not model_dir:
        send_text(STATUS_OK, json.dumps({"versions": versions(True)}))
        return 0
    try:
        model = load_model(model_dir, model_file)
        info = model.info()
        info["versions"] = versions(False)
    except LoadError as e:
        send_text(STATUS_ERROR, str(e))
        return 1
    except BaseException as e:
        traceback.print_exc()
        send_text(STATUS_ERROR, "loading %s failed: %s" %
                  (os.path.join(model_dir, model_file or "model.py"),
                   exception_line(e)))
        return 1
    send_text(STATUS_OK, json.dumps(info))
    return serve(model)


sys.exit(main())
