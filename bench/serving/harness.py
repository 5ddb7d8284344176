"""The serving benchmarks' shared harness: the bench model and its request
bodies, `slipway server` processes pinned to the server CPU, wrk and
fixed-rate h2load runs on the client CPU, and the machine description of
the result files. Imported by bench/serving/run (and its shadow part,
shadow_cost.py) and bench/monitoring/run; not a program.

Every function that fails ends the program with SystemExit naming the
calling script (PROG) and what to do; every process started through
`Servers` is stopped by its PID in `Servers.stop_all`.
"""

import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SERVING_DIR = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(SERVING_DIR)
REPO_DIR = os.path.dirname(BENCH_DIR)
PYTHON = "/usr/bin/python3"
POST_LUA = os.path.join(SERVING_DIR, "post.lua")
# The calling script as its messages name it, e.g. "bench/serving/run".
PROG = os.path.relpath(os.path.abspath(sys.argv[0]), REPO_DIR)

SERVER_CPU = "0"
CLIENT_CPU = "1"
CONNECTIONS = 64
APP = "bench"
PREDICT_PATH = "/v1/apps/%s/predict" % APP
INFER_PATH = "/v2/models/%s/infer" % APP
FEATURES = 30
TRAIN_ROWS = 20_000
REQUEST_ROWS = 1024  # the rows requests are made of; the big request's size
LATENCY_WARMUP_SECONDS = 1  # h2load's untimed start of every fixed-rate run
ROUNDS = 100
DEPTH = 6
SEED = 42

SPEC = """app: {app}
description: bench/serving/run's model (100 trees of depth 6, 30 float features)
data:
  train: {{path: train.csv}}
schema:
  target: y
  task: binary_classification
pipelines:
  train:
    steps:
      - ingest: {{source: train}}
      - split: {{test_fraction: 0.2, seed: 7}}
      - train: {{objective: "binary:logistic", rounds: {rounds}, max_depth: {depth}, seed: 3, threads: 1}}
      - evaluate: {{}}
      - register: {{}}
"""
BATCHING_OFF = "endpoint: {batching: {enabled: false}}\n"


def die(message):
    raise SystemExit(PROG + ": " + message)


def on_signal(signum, _frame):
    # Turns SIGTERM/SIGHUP into SystemExit so `finally` stops every server.
    raise SystemExit("%s: stopped by signal %d" % (PROG, signum))


def capture(cmd):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return (proc.stdout + proc.stderr).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shown(cmd, work):
    """A command as the results show it: the work directory as WORK, ports
    as PORT, other paths relative to the repository."""
    def arg(a):
        a = re.sub(r"127\.0\.0\.1:[0-9]+", "127.0.0.1:PORT",
                   a.replace(work, "WORK"))
        if os.path.isabs(a) and a.startswith(REPO_DIR + os.sep):
            return os.path.relpath(a, REPO_DIR)
        return a
    args = [arg(a) for a in cmd]
    for i in range(1, len(args)):
        if args[i - 1] == "--port":
            args[i] = "PORT"
    return shlex.join(args)


# --- processes -------------------------------------------------------------

def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def start_ready(servers, slipway, work, names, flags=None):
    """Starts one `slipway server` per name on WORK/data-<name>, with
    flags.get(name) added to its command line, and waits until each serves
    APP; returns ({name: (proc, port)}, {name: argv})."""
    procs, cmds = {}, {}
    for name in names:
        data_dir = os.path.join(work, "data-" + name)
        proc, port = start_slipway(servers, slipway, data_dir,
                                   (flags or {}).get(name, ()))
        wait_ready(proc, port, "GET", "/v2/models/%s/ready" % APP, None,
                   os.path.join(data_dir, "server.log"))
        procs[name] = (proc, port)
        cmds[name] = proc.args
    return procs, cmds


def measure_part(build_dir, slipway, rounds, seconds, prefix, measure_in):
    """Runs a bench part: `measure_in(slipway, rounds, seconds, servers,
    work)` in a temporary directory under `build_dir` (named `prefix`...)
    with its own Servers, stopped whatever happens. Returns its dict with
    the run's description added (what the parts' sections print)."""
    started = time.monotonic()
    load_start = load_average()
    servers = Servers()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix, dir=build_dir) as work:
            m = measure_in(slipway, rounds, seconds, servers, work)
    finally:
        servers.stop_all()
    m.update(build_dir=build_dir, slipway=slipway, rounds=rounds,
             seconds=seconds, load_start=load_start,
             load_end=load_average(),
             minutes=(time.monotonic() - started) / 60,
             when=datetime.datetime.now(datetime.timezone.utc).strftime(
                 "%Y-%m-%d %H:%M UTC"))
    return m


class Servers:
    """Every process the bench starts, stopped by PID in stop_all."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, log_path, env=None, stdout=None):
        log = open(log_path, "ab")
        proc = subprocess.Popen(cmd, stdout=stdout or log, stderr=log,
                                env=dict(os.environ, **(env or {})),
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # The process group start_new_session made for this server.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        self.procs.remove(proc)

    def stop_all(self):
        for proc in list(reversed(self.procs)):
            self.stop(proc)


def process_tree(pid):
    """pid and its children (gunicorn's and nginx's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    return pids


def peak_rss_kb(pid):
    """Sum of VmHWM (peak resident set) over the process and its children."""
    total = 0
    for p in process_tree(pid):
        with open("/proc/%d/status" % p) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def body_headers(body_file):
    """Extra request headers of a body file: BODY.headers holds "Name:
    value" lines (the binary OIP bodies need Inference-Header-Content-Length)."""
    path = body_file + ".headers"
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return dict(line.rstrip("\n").split(": ", 1) for line in f if line.strip())


def http_call(port, method, path, body=None, timeout=30, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        sent.update(headers or {})
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc, port, method, path, body, log_path, timeout=120):
    """Polls until the server answers 200 (a start-up wait, not a test)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            status, payload = http_call(port, method, path, body)
            if status == 200:
                return
            last = "%d %s" % (status, payload[:200])
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    with open(log_path, errors="replace") as f:
        log = f.read()[-3000:]
    die("server %s did not become ready (last answer: %s); log:\n%s" %
        (shlex.join(proc.args), last, log))


# --- Slipway ---------------------------------------------------------------

def start_slipway(servers, slipway, data_dir, flags=()):
    """`slipway server` pinned to the server CPU, with `flags` added;
    returns (proc, port)."""
    cmd = ["taskset", "-c", SERVER_CPU, slipway, "server", "--data-dir",
           data_dir, "--listen", "127.0.0.1:0", "--threads", "1"] + list(flags)
    log_path = os.path.join(data_dir, "server.log")
    proc = servers.start(cmd, log_path, env={"OMP_NUM_THREADS": "1"},
                         stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        with open(log_path, errors="replace") as f:
            die("slipway server did not start (%r); log:\n%s" %
                (line, f.read()[-3000:]))
    return proc, int(line.rsplit(":", 1)[1])


def slipway_cli(slipway, port, data_dir, *args):
    # --data-dir: the CLI sends the server's admin token (DESIGN.md).
    cmd = [slipway, "--server", "http://127.0.0.1:%d" % port, "--data-dir",
           data_dir] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        die("`%s` failed (exit %d):\n%s%s" % (shlex.join(cmd), proc.returncode,
                                             proc.stdout, proc.stderr))
    return proc.stdout


def train_app(servers, slipway, data_dir, spec_text, export_dir):
    """Applies the spec, trains and promotes version 1, exports it, and
    stops the server, so that the measured server only loads the model."""
    os.makedirs(data_dir)
    # Next to train.csv, which the spec names relative to itself.
    spec_path = data_dir + ".yaml"
    with open(spec_path, "w") as f:
        f.write(spec_text)
    proc, port = start_slipway(servers, slipway, data_dir)
    slipway_cli(slipway, port, data_dir, "apply", spec_path)
    slipway_cli(slipway, port, data_dir, "run", APP, "train", "--wait")
    slipway_cli(slipway, port, data_dir, "models", "promote", APP, "1")
    slipway_cli(slipway, port, data_dir, "models", "export", APP, "1",
                export_dir)
    servers.stop(proc)


# --- inputs ----------------------------------------------------------------

def generate(work):
    """train.csv (features f0..f29, target y) and REQUEST_ROWS other rows
    from the same distribution for the requests; deterministic (SEED)."""
    rng = np.random.default_rng(SEED)
    names = ["f%d" % i for i in range(FEATURES)]
    weights = rng.normal(0, 1, FEATURES)

    def draw(n):
        x = rng.normal(0, 1, (n, FEATURES))
        logit = (x @ weights) / 3 + x[:, 0] * x[:, 1] - np.abs(x[:, 2])
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return np.round(x, 6), y

    x, y = draw(TRAIN_ROWS)
    with open(os.path.join(work, "train.csv"), "w") as f:
        f.write(",".join(names + ["y"]) + "\n")
        for row, label in zip(x, y):
            f.write(",".join("%.6f" % v for v in row) + ",%d\n" % label)
    rows, _ = draw(REQUEST_ROWS)
    with open(os.path.join(work, "rows.csv"), "w") as f:
        for row in rows:
            f.write(",".join("%.6f" % v for v in row) + "\n")
    records = [{n: float("%.6f" % v) for n, v in zip(names, row)}
               for row in rows]
    bodies = {}
    for name, recs in (("one_row", records[:1]), ("rows_1024", records)):
        path = os.path.join(work, name + ".json")
        with open(path, "w") as f:
            json.dump({"records": recs}, f)
        bodies[name] = path
    return rows, bodies


def infer_body(work, port, rows):
    """The OIP v2 body for the first row: one tensor per input of the
    model's metadata, in its datatype."""
    status, meta = http_call(port, "GET", "/v2/models/" + APP)
    if status != 200:
        die("GET /v2/models/%s answered %d: %s" % (APP, status, meta))
    inputs = []
    for spec in json.loads(meta)["inputs"]:
        i = int(spec["name"][1:])
        inputs.append({"name": spec["name"], "datatype": spec["datatype"],
                       "shape": [1], "data": [float(rows[0][i])]})
    path = os.path.join(work, "infer_one_row.json")
    with open(path, "w") as f:
        json.dump({"inputs": inputs}, f)
    return path


def positive_probabilities(answer):
    """P(class 1) per row: from Slipway's OIP v2 answer (the
    "probabilities" tensor, [rows, 2]), Slipway's /v1 answer
    ({"label", "probabilities": {"0": p0, "1": p1}} per row) or the Python
    servers' ([p1, ...])."""
    if "outputs" in answer:
        for out in answer["outputs"]:
            if out["name"] == "probabilities":
                return out["data"][1::2]
        die("OIP v2 answer without a probabilities tensor: %s" % answer)
    return [p["probabilities"]["1"] if isinstance(p, dict) else p
            for p in answer["predictions"]]


def check_answers(targets, reference):
    """Every side must answer 200 with the reference model's predictions.
    targets: (name, port, path, body file, rows). Returns the first
    Slipway single-row answer (nginx serves it)."""
    lines, slipway_answer = [], None
    for name, port, path, body_file, rows in targets:
        with open(body_file, "rb") as f:
            status, payload = http_call(port, "POST", path, f.read(),
                                        headers=body_headers(body_file))
        if status != 200:
            die("%s: POST %s answered %d: %s" % (name, path, status,
                                                  payload[:500]))
        answer = json.loads(payload)
        got = positive_probabilities(answer)
        if len(got) != rows:
            die("%s answered %d predictions for %d rows: %s" %
                (name, len(got), rows, payload[:500]))
        error = float(np.max(np.abs(np.array(got) - reference[:rows])))
        if error > 1e-6:
            die("%s's predictions differ from python3-xgboost's by up to %g"
                % (name, error))
        lines.append("- %s, %d row%s: the same probabilities as "
                     "python3-xgboost's Booster.inplace_predict (largest "
                     "difference %.1g)" % (name, rows, "s" if rows > 1 else "",
                                           error))
        if slipway_answer is None and path == PREDICT_PATH and rows == 1:
            slipway_answer = payload.decode()
    return lines, slipway_answer


# --- load generators -------------------------------------------------------

def run_wrk(port, path, body_file, seconds, connections=CONNECTIONS):
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c%d" % connections,
           "-d%ds" % seconds, "-s", POST_LUA,
           "http://127.0.0.1:%d%s" % (port, path)]
    env = dict(os.environ, BODY_FILE=body_file)
    if os.path.exists(body_file + ".headers"):
        env["HEADERS_FILE"] = body_file + ".headers"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        die("wrk failed (exit %d): %s\n%s%s" % (
            proc.returncode, shlex.join(cmd), proc.stdout, proc.stderr))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    else:
        die("wrk printed no result line:\n" + proc.stdout)
    seconds = result["duration_us"] / 1e6
    result["ok"] = result["requests"] - result["status_errors"]
    result["errors"] = sum(result[k] for k in (
        "connect_errors", "read_errors", "write_errors", "status_errors",
        "timeouts"))
    result["rps"] = result["ok"] / seconds
    return cmd, result


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_values) - 1,
                   int(np.ceil(p / 100 * len(sorted_values))) - 1))
    return sorted_values[k]


def run_h2load(port, path, body_file, per_client_rps, seconds, log_path,
               connections=CONNECTIONS):
    """A fixed-rate run: `--rps` per connection, after
    LATENCY_WARMUP_SECONDS of warm-up; p50, p99 and max are nearest-rank
    over the latencies h2load logged for the measured `seconds`."""
    cmd = ["taskset", "-c", CLIENT_CPU, "h2load", "--h1", "-c",
           str(connections), "-t", "1", "--rps", str(per_client_rps),
           "--warm-up-time", "%ds" % LATENCY_WARMUP_SECONDS, "-D",
           "%ds" % seconds, "-d", body_file, "-H",
           "Content-Type: application/json", "--log-file", log_path,
           "http://127.0.0.1:%d%s" % (port, path)]
    if os.path.exists(log_path):
        os.remove(log_path)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        die("h2load failed (exit %d): %s\n%s%s" % (
            proc.returncode, shlex.join(cmd), proc.stdout, proc.stderr))
    result = {}
    for line in proc.stdout.splitlines():
        words = line.replace(",", "").split()
        if line.startswith("requests:"):
            result.update(total=int(words[1]), succeeded=int(words[7]),
                          failed=int(words[9]), errored=int(words[11]),
                          timeout=int(words[13]))
        elif line.startswith("finished in"):
            result["achieved_rps"] = float(words[3])
    if "total" not in result:
        die("h2load printed no request counts:\n" + proc.stdout)
    starts, latencies, non_200 = [], [], 0
    with open(log_path) as f:
        for line in f:
            start, status, micros = line.split("\t")[:3]
            starts.append(int(start))
            latencies.append(int(micros))
            non_200 += status != "200"
    if not latencies:
        die("h2load logged no requests:\n" + proc.stdout)
    latencies.sort()
    # How evenly h2load spread the requests: the share that started within
    # 20 us of the previous one (an even spread at R req/s leaves 1/R).
    gaps = np.diff(np.sort(starts))
    result.update(logged=len(latencies), non_200=non_200,
                  bunched_pct=100 * float(np.mean(gaps < 20)),
                  p50_ms=percentile(latencies, 50) / 1000,
                  p99_ms=percentile(latencies, 99) / 1000,
                  max_ms=latencies[-1] / 1000)
    return cmd, result


# --- report ----------------------------------------------------------------

def summary(values):
    return statistics.median(values), min(values), max(values)


def cell(values, fmt):
    m, lo, hi = summary(values)
    return "%s (%s–%s)" % (fmt % m, fmt % lo, fmt % hi)


def build_type(build_dir):
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_BUILD_TYPE:"):
                return line.split("=", 1)[1].strip() or "(none)"
    return "unknown"


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return [("CPU", cpu), ("Cores", str(os.cpu_count())),
            ("RAM", "%.1f GiB" % (mem_kb / 2**20)),
            ("Kernel", platform.release())]


def dpkg_version(package):
    """The installed Debian package's version, or "unknown"."""
    return capture(["dpkg-query", "-W", "-f=${Version}", package])


def slipway_build(build_dir, slipway):
    """The measured binary: commit (and the uncommitted source it was built
    with), path, build type and compiler."""
    compiler = "unknown"
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_CXX_COMPILER:"):
                path = line.split("=", 1)[1].strip()
                compiler = capture([path, "--version"]).splitlines()[0]
    commit = capture(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(
        ["git", "-C", REPO_DIR, "status", "--porcelain", "--", "src"],
        capture_output=True, text=True).stdout.split("\n")
    changed = [line[3:] for line in changed if line]
    if changed:
        # Other work in progress that the measured binary was built with.
        commit += " plus uncommitted changes to %s" % ", ".join(changed)
    return "commit %s; %s (CMAKE_BUILD_TYPE %s), %s" % (
        commit, os.path.relpath(slipway, REPO_DIR), build_type(build_dir),
        compiler)
