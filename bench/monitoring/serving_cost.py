"""The serving cost of monitoring, a part of bench/monitoring/run: the
single-row throughput of bench/serving/run's model served by two `slipway
server`s that differ only in `monitor` — one with the defaults (every
request profiled into window profiles and logged through the buffered
prediction log) and `window: 5s`, one with `monitor: {enabled: false}` —
measured with wrk in interleaved rounds. Then checks that the monitored
server really did its work (predictions stored, none dropped, windows
stored) and that the other did none. Protocol and reading guide:
bench/monitoring/README.md. wrk runs and the bench model come from
bench/serving/harness.py.
"""

import os
import sqlite3
import statistics
import subprocess
import sys

import numpy as np
import xgboost as xgb

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "serving"))
from harness import (  # noqa: E402  (bench/serving/harness.py)
    APP, CLIENT_CPU, CONNECTIONS, DEPTH, FEATURES, INFER_PATH, PREDICT_PATH,
    ROUNDS, SEED, SERVER_CPU, SPEC, TRAIN_ROWS, cell, check_answers, die,
    dpkg_version, generate, http_call, infer_body, machine, measure_part,
    peak_rss_kb, run_wrk, sha256_file, shown, slipway_build, start_ready,
    train_app)

HEADING = "Serving cost of monitoring (monitoring on vs off)"
MIN_ROUNDS = 5
WINDOW_SECONDS = 5
MONITOR_ON = "monitor: {window: %ds}\n" % WINDOW_SECONDS
MONITOR_OFF = "monitor: {enabled: false}\n"
WARMUP_SECONDS = 2
TARGET_COST = 0.05
# server: (label, spec lines added to bench/serving/run's spec)
SERVERS = {
    "on": ("monitoring on (defaults, `window: %ds`)" % WINDOW_SECONDS,
           MONITOR_ON),
    "off": ("monitoring off (`enabled: false`)", MONITOR_OFF),
}
# protocol: (label, path, body name)
PROTOCOLS = {
    "v1": ("/v1 predict", PREDICT_PATH, "one_row"),
    "v2": ("OIP v2 infer", INFER_PATH, "infer_one_row"),
}
DROPPED_METRIC = "slipway_prediction_log_dropped_total"


def dropped_total(port):
    """The server's prediction log drops so far, from /metrics."""
    status, payload = http_call(port, "GET", "/metrics")
    if status != 200:
        die("GET /metrics answered %d: %s" % (status, payload[:300]))
    for line in payload.decode().splitlines():
        if line.startswith(DROPPED_METRIC + " ") or line.startswith(
                DROPPED_METRIC + "{"):
            return int(float(line.rsplit(" ", 1)[1]))
    die("/metrics has no %s line" % DROPPED_METRIC)


def stored(data_dir):
    """What the stopped server left in its SQLite store for the app:
    (predictions, windows, rows in the windows)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir,
                                                          "slipway.db"),
                         uri=True)
    try:
        predictions = db.execute("SELECT COALESCE(SUM(rows), 0) FROM "
                                 "prediction_chunks WHERE app = ?",
                                 (APP,)).fetchone()[0]
        windows, rows = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(rows), 0) FROM monitor_windows "
            "WHERE app = ?", (APP,)).fetchone()
    finally:
        db.close()
    return predictions, windows, rows


def measure(build_dir, slipway, rounds, seconds):
    """Runs the part; returns what section() writes, by name."""
    return measure_part(build_dir, slipway, rounds, seconds, "slipway-bmon-",
                        measure_in)


def measure_in(slipway, rounds, seconds, servers, work):
    print("serving cost: generating %d training rows" % TRAIN_ROWS,
          flush=True)
    rows, bodies = generate(work)
    spec = SPEC.format(app=APP, rounds=ROUNDS, depth=DEPTH)
    digests = {}
    for name, (_, extra) in SERVERS.items():
        print("serving cost: training the model (monitoring %s)" % name,
              flush=True)
        export = os.path.join(work, "export-" + name)
        train_app(servers, slipway, os.path.join(work, "data-" + name),
                  spec + extra, export)
        digests[name] = sha256_file(os.path.join(export, "model.json"))
    if len(set(digests.values())) != 1:
        die("the trainings gave different model.json files: %s" % digests)

    procs, server_cmds = start_ready(servers, slipway, work, SERVERS)
    bodies["infer_one_row"] = infer_body(work, procs["on"][1], rows)

    booster = xgb.Booster(model_file=os.path.join(work, "export-on",
                                                  "model.json"))
    booster.set_param({"nthread": 1})
    reference = booster.inplace_predict(np.asarray(rows, dtype=np.float32))
    targets = []
    for name, (label, _) in SERVERS.items():
        for plabel, path, body in PROTOCOLS.values():
            targets.append(("Slipway %s, %s" % (plabel, label),
                            procs[name][1], path, bodies[body], 1))
    check_lines, _ = check_answers(targets, reference)
    # Requests each server answered 200: the checks, then every wrk run.
    answered = {name: len(PROTOCOLS) for name in SERVERS}
    wrk_runs = {name: 0 for name in SERVERS}

    def load(name, protocol, run_seconds):
        _, path, body = PROTOCOLS[protocol]
        cmd, result = run_wrk(procs[name][1], path, bodies[body], run_seconds)
        answered[name] += result["ok"]
        wrk_runs[name] += 1
        return cmd, result

    print("serving cost: warm-up, %d s of wrk per server and protocol" %
          WARMUP_SECONDS, flush=True)
    for protocol in PROTOCOLS:
        for name in SERVERS:
            load(name, protocol, WARMUP_SECONDS)

    samples = {(n, p): [] for p in PROTOCOLS for n in SERVERS}
    commands = {}
    print("serving cost: %d round%s of %d s wrk runs, monitoring on and off "
          "alternating first" % (rounds, "" if rounds == 1 else "s",
                                 seconds), flush=True)
    for r in range(rounds):
        order = list(SERVERS) if r % 2 == 0 else list(SERVERS)[::-1]
        for protocol in PROTOCOLS:
            for name in order:
                commands[protocol], result = load(name, protocol, seconds)
                samples[(name, protocol)].append(result)
                print("  round %d %s monitoring %-3s %9.0f req/s  p99 %6.2f "
                      "ms  errors %d" % (r + 1, protocol, name, result["rps"],
                                         result["p99_us"] / 1000,
                                         result["errors"]), flush=True)
            on = samples[("on", protocol)][-1]["rps"]
            off = samples[("off", protocol)][-1]["rps"]
            print("  round %d %s on/off %.3f" % (r + 1, protocol, on / off),
                  flush=True)

    dropped = {name: dropped_total(port) for name, (_, port) in procs.items()}
    peak = {name: peak_rss_kb(proc.pid) for name, (proc, _) in procs.items()}
    # Stopping a server (SIGTERM) stores what its prediction log still
    # holds; then its store is read.
    for name, (proc, _) in procs.items():
        servers.stop(proc)
    store = {name: stored(os.path.join(work, "data-" + name))
             for name in SERVERS}
    return {
        "samples": samples, "commands": [shown(commands[p], work)
                                         for p in PROTOCOLS],
        "server_cmds": [shown(server_cmds[n], work) for n in SERVERS],
        "check_lines": check_lines, "model_sha": digests["on"],
        "answered": answered, "wrk_runs": wrk_runs, "dropped": dropped,
        "peak_rss_kb": peak, "store": store,
        "body_bytes": {p: os.path.getsize(bodies[b])
                       for p, (_, _, b) in PROTOCOLS.items()},
    }


def log_complete(m):
    """Whether monitoring did its work: the monitored server stored one
    prediction per answered request (wrk counts the answers of its run;
    requests still in flight when a run ends are answered and logged but
    not counted, at most one per connection), dropped none and stored
    windows; the other stored nothing. Returns (ok, lines)."""
    answered, runs = m["answered"]["on"], m["wrk_runs"]["on"]
    predictions, windows, window_rows = m["store"]["on"]
    slack = CONNECTIONS * runs
    logged_ok = answered <= predictions <= answered + slack
    dropped = m["dropped"]["on"]
    off = m["store"]["off"]
    ok = logged_ok and dropped == 0 and windows > 0 and off == (0, 0, 0)
    lines = [
        "- Monitoring on: %d predictions stored in the prediction log "
        "(the rows of SQLite `prediction_chunks`) for %d answers counted by wrk and the checks "
        "(expected: at least that many, at most %d more — one request per "
        "connection may be answered after wrk stops counting, %d runs × %d "
        "connections): %s" % (
            predictions, answered, slack, runs, CONNECTIONS,
            "**complete**" if logged_ok else "**INCOMPLETE**"),
        "- Monitoring on: `%s` %d" % (DROPPED_METRIC, dropped),
        "- Monitoring on: %d windows stored (`monitor_windows`), %d rows "
        "profiled in them (%.0f%% of the predictions; a window still open "
        "when the server stops is not stored)" % (
            windows, window_rows,
            100 * window_rows / predictions if predictions else 0),
        "- Monitoring off: %d predictions and %d windows stored, `%s` %d" % (
            off[0], off[1], DROPPED_METRIC, m["dropped"]["off"]),
    ]
    return ok, lines


def section(m):
    """The part's section of bench/results/monitoring.md (lines, starting
    with its "## " heading), and whether monitoring did its work."""
    samples, rounds = m["samples"], m["rounds"]
    full = rounds >= MIN_ROUNDS
    ok, log_lines = log_complete(m)

    def verdict(met):
        if not full:
            return "not judged (reduced run)"
        if not ok:
            return "not judged (monitoring did not do its work)"
        return "**met**" if met else "**MISSED**"

    ratios, costs = {}, {}
    for protocol in PROTOCOLS:
        ratios[protocol] = [on["rps"] / off["rps"] for on, off in zip(
            samples[("on", protocol)], samples[("off", protocol)])]
        costs[protocol] = 1 - statistics.median(ratios[protocol])

    out = ["## " + HEADING, "",
           "Measured %s by the serving part of `bench/monitoring/run` "
           "(`make bench-monitoring`). The part took %.1f minutes." % (
               m["when"], m["minutes"]), ""]
    if not full:
        out += ["**A reduced run**: %d round%s of %d s, not the %d rounds of "
                "the protocol (`--rounds %d --seconds %d`); the target is "
                "only judged on a full run." % (
                    rounds, "" if rounds == 1 else "s", m["seconds"],
                    MIN_ROUNDS, rounds, m["seconds"]), ""]
    out += ["### Machine", ""]
    out += ["- %s: %s" % kv for kv in machine()]
    out += ["- Load average (1, 5, 15 min) at start: %s; at end: %s" % (
        m["load_start"], m["load_end"]),
        "- Slipway: %s" % slipway_build(m["build_dir"], m["slipway"]),
        "- Load generator: wrk %s" % dpkg_version("wrk"), ""]
    out += ["### Target", "", "| target | measured | result |",
            "|---|---|---|"]
    for protocol, (plabel, _, _) in PROTOCOLS.items():
        out.append("| single-row %s throughput, monitoring on vs off: cost "
                   "≤ %.0f%% | %.1f%% | %s |" % (
                       plabel, 100 * TARGET_COST, 100 * costs[protocol],
                       verdict(costs[protocol] <= TARGET_COST)))
    out += ["", "Cost = 1 − the median over the rounds of (req/s with "
            "monitoring on) / (req/s with monitoring off), each round's two "
            "runs back to back. Negative: the monitored server was the "
            "faster one (noise).", ""]
    out += ["### Throughput (wrk, %d connections, single-row requests)" %
            CONNECTIONS, "",
            "req/s counts status 200 answers only; errors: non-200 answers, "
            "socket errors and timeouts over all rounds.", "",
            "| requests | monitoring on: req/s median (min–max) | monitoring "
            "off: req/s median (min–max) | on/off per round | on/off median "
            "| cost | p99 ms median, on / off | errors, on / off |",
            "|---|---|---|---|---|---|---|---|"]
    for protocol, (plabel, _, _) in PROTOCOLS.items():
        on, off = samples[("on", protocol)], samples[("off", protocol)]
        out.append("| %s | %s | %s | %s | %.3f | %.1f%% | %.2f / %.2f | "
                   "%d / %d |" % (
                       plabel, cell([x["rps"] for x in on], "%.0f"),
                       cell([x["rps"] for x in off], "%.0f"),
                       ", ".join("%.3f" % x for x in ratios[protocol]),
                       statistics.median(ratios[protocol]),
                       100 * costs[protocol],
                       statistics.median(x["p99_us"] for x in on) / 1000,
                       statistics.median(x["p99_us"] for x in off) / 1000,
                       sum(x["errors"] for x in on),
                       sum(x["errors"] for x in off)))
    out += ["", "### Did monitoring do its work?", "",
            "After the last run: `%s` from each server's /metrics; then each "
            "server was stopped (SIGTERM: the prediction log stores what it "
            "still holds) and its SQLite store read." % DROPPED_METRIC, ""]
    out += log_lines
    out += ["", "### Peak memory", "",
            "VmHWM (peak resident set, /proc/PID/status) after the last run: "
            "monitoring on %.1f MiB, off %.1f MiB." % (
                m["peak_rss_kb"]["on"] / 1024, m["peak_rss_kb"]["off"] / 1024)]
    out += ["", "### Setup", "",
            "- Model: bench/serving/run's — binary:logistic, %d trees, "
            "max_depth %d, one thread, trained by Slipway on %d generated "
            "rows of %d float features (numpy seed %d); model.json sha256 "
            "%s, the same bytes from both servers' trainings." % (
                ROUNDS, DEPTH, TRAIN_ROWS, FEATURES, SEED, m["model_sha"]),
            "- Two servers, each with its own data directory, the same spec "
            "(bench/serving/run's; the `endpoint` defaults: batching on) but "
            "for `monitor`: `%s` (every other key at its default: profiles "
            "and prediction log on, `log_inputs` 0, so the log stores "
            "request id, version, time and prediction) and `%s`. Each was "
            "trained, then restarted so that it only loads its model." % (
                MONITOR_ON.strip(), MONITOR_OFF.strip()),
            "- CPUs: both servers `taskset -c %s` (their HTTP, batching, "
            "prediction log and window threads), wrk `taskset -c %s`." % (
                SERVER_CPU, CLIENT_CPU),
            "- Requests: %d keep-alive connections; a single-row /v1 body of "
            "%d bytes, an OIP v2 body of %d bytes (one tensor of shape [1] "
            "per feature)." % (CONNECTIONS, m["body_bytes"]["v1"],
                               m["body_bytes"]["v2"]),
            "- Protocol: one untimed %d s wrk run per server and protocol, "
            "then %d round%s; in each round, per protocol, one %d s run on "
            "each server back to back, the monitored server first in odd "
            "rounds and second in even ones." % (
                WARMUP_SECONDS, rounds, "" if rounds == 1 else "s",
                m["seconds"]),
            "", "Before timing, both servers answered these bodies:", ""]
    out += m["check_lines"]
    out += ["", "### Commands", "", "```",
            "# servers: OMP_NUM_THREADS=1; WORK/data-on.yaml and "
            "WORK/data-off.yaml are the two specs"]
    out += m["server_cmds"]
    out += ["# load: BODY_FILE=WORK/one_row.json (/v1) or "
            "WORK/infer_one_row.json (OIP v2)"] + m["commands"] + ["```"]
    out += ["", "### Every run", "",
            "| round | requests | monitoring | req/s | p50 ms | p99 ms | "
            "errors |", "|---|---|---|---|---|---|---|"]
    for r in range(rounds):
        order = list(SERVERS) if r % 2 == 0 else list(SERVERS)[::-1]
        for protocol in PROTOCOLS:
            for name in order:
                x = samples[(name, protocol)][r]
                out.append("| %d | %s | %s | %.0f | %.3f | %.3f | %d |" % (
                    r + 1, PROTOCOLS[protocol][0], name, x["rps"],
                    x["p50_us"] / 1000, x["p99_us"] / 1000, x["errors"]))
    print("\n".join([""] + out[out.index("### Target"):
                                out.index("### Peak memory")]), flush=True)
    return out, ok


def check_tools():
    """Dies naming the Debian packages to install when wrk or taskset is
    missing, or when the machine has fewer than 2 CPUs."""
    if os.cpu_count() < 2:
        die("the serving cost part pins the servers to CPU 0 and wrk to CPU "
            "1; this machine has %d CPU" % os.cpu_count())
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("taskset", "util-linux"))
               if subprocess.run(["which", tool],
                                 capture_output=True).returncode != 0]
    if missing:
        die("missing packages; install them with: apt-get install -y "
            "--no-install-recommends " + " ".join(missing))
