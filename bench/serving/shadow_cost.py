"""The latency cost of a shadow, a part of bench/serving/run: bench/serving/
run's model served by two `slipway server`s that differ only in
`endpoint.shadow` — one with `shadow: {model: challenger}`, the challenger
alias on a second registered version of the same model, so that every
answered request is predicted again by that version after its answer has
gone out; one without. Both measured with fixed-rate h2load runs (latency)
and saturating wrk runs (throughput) in interleaved rounds; then checked
that the shadow predicted a copy of every answered request
(`slipway_shadow_predictions_total` against `slipway_requests_total`).
Protocol and reading guide: bench/serving/README.md. load runs and
the bench model come from bench/serving/harness.py.
"""

import json
import os
import re
import statistics
import subprocess
import time

import numpy as np
import xgboost as xgb

from harness import (
    APP, CLIENT_CPU, CONNECTIONS, DEPTH, FEATURES, LATENCY_WARMUP_SECONDS,
    PREDICT_PATH, ROUNDS, SEED, SERVER_CPU, SPEC, TRAIN_ROWS, cell,
    check_answers, die, dpkg_version, generate, http_call, machine,
    measure_part, peak_rss_kb, run_h2load, run_wrk, sha256_file, shown,
    slipway_build, slipway_cli, start_ready, start_slipway, train_app)

HEADING = "Shadow latency cost (shadow on vs off)"
CHALLENGER = "challenger"
SHADOW = "endpoint: {shadow: {model: %s}}\n" % CHALLENGER
# server: (label, spec lines added to bench/serving/run's spec)
SERVERS = {
    "on": ("shadow on (`%s`)" % SHADOW.strip(), SHADOW),
    "off": ("no shadow", ""),
}
# The shadow's thread runs on the load generator's CPU, at idle priority
# there: the serving threads keep the server CPU to themselves, as on a
# machine where the shadow is given cores the answers do not use.
SERVER_FLAGS = {"on": ["--shadow-cpus", CLIENT_CPU]}
WARMUP_SECONDS = 2
MIN_ROUNDS = 5
TARGET_P99 = 0.05
# A fixed-rate run counts when its server answered at least this share of
# the offered rate: h2load waits for each answer before a connection's next
# request, so a server that falls behind is offered less, and its latencies
# no longer include the wait of the requests it was late for.
KEPT_UP = 0.97
# Fixed-rate runs: few connections, so that h2load's bursts (each
# connection's timer fires at the same moments) stay small, at this share
# of the slower server's median saturated throughput.
LATENCY_CONNECTIONS = 8
LOAD_FRACTION = 0.5
# How long the shadow may take to finish the copies of a run's last
# requests once the run has ended (it is a bound, not a wait that hopes).
SETTLE_SECONDS = 30
SHADOW_METRIC = "slipway_shadow_predictions_total"
REQUESTS_METRIC = "slipway_requests_total"
ROLE_METRIC = "slipway_model_version_role"
OUTCOMES = ("ok", "error", "dropped")
SAMPLE = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def metric_samples(port, family):
    """(labels, value) of every sample of `family` for the bench app in
    the server's /metrics."""
    status, payload = http_call(port, "GET", "/metrics")
    if status != 200:
        die("GET /metrics answered %d: %s" % (status, payload[:300]))
    samples = []
    for line in payload.decode().splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == family:
            labels = dict(LABEL.findall(match.group(2)))
            if labels.get("app") == APP:
                samples.append((labels, float(match.group(3))))
    return samples


def counts(port):
    """{"answered": predict requests answered 200, and per outcome the
    copies the shadow predicted} from the server's /metrics."""
    out = {"answered": 0}
    out.update({outcome: 0 for outcome in OUTCOMES})
    for labels, value in metric_samples(port, REQUESTS_METRIC):
        if labels["endpoint"] == "predict" and labels["status"] == "200":
            out["answered"] += int(value)
    for labels, value in metric_samples(port, SHADOW_METRIC):
        out[labels["outcome"]] += int(value)
    return out


def settled_counts(port, shadowed):
    """counts() once the shadow has handled every copy (ok + error +
    dropped = answered), polled up to SETTLE_SECONDS; for the server
    without a shadow, counts() at once. The second value says whether the
    counts settled."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        c = counts(port)
        done = sum(c[o] for o in OUTCOMES) == c["answered"]
        if not shadowed or done or time.monotonic() > deadline:
            return c, done or not shadowed
        time.sleep(0.05)


def roles(port):
    """{version: role} of the bench app's versions that hold a role."""
    return {int(labels["version"]): labels["role"]
            for labels, value in metric_samples(port, ROLE_METRIC)
            if value == 1}


def add_challenger(servers, slipway, data_dir, export_dir):
    """Trains the app again (version 2, the same model), points the
    challenger alias at it and exports it; then stops the server."""
    proc, port = start_slipway(servers, slipway, data_dir)
    slipway_cli(slipway, port, data_dir, "run", APP, "train", "--wait")
    slipway_cli(slipway, port, data_dir, "models", "promote", APP, "2",
                "--alias", CHALLENGER)
    slipway_cli(slipway, port, data_dir, "models", "export", APP, "2",
                export_dir)
    servers.stop(proc)


def measure(build_dir, slipway, rounds, seconds):
    """Runs the part; returns what section() writes, by name."""
    return measure_part(build_dir, slipway, rounds, seconds, "slipway-bshadow-",
                        measure_in)


def measure_in(slipway, rounds, seconds, servers, work):
    print("shadow: generating %d training rows" % TRAIN_ROWS, flush=True)
    rows, bodies = generate(work)
    spec = SPEC.format(app=APP, rounds=ROUNDS, depth=DEPTH)
    digests = {}
    for name, (_, extra) in SERVERS.items():
        print("shadow: training versions 1 and 2 of the model (shadow %s)" %
              name, flush=True)
        data_dir = os.path.join(work, "data-" + name)
        export = os.path.join(work, "export-%s-v1" % name)
        train_app(servers, slipway, data_dir, spec + extra, export)
        digests[name + " v1"] = sha256_file(os.path.join(export,
                                                         "model.json"))
        export = os.path.join(work, "export-%s-v2" % name)
        add_challenger(servers, slipway, data_dir, export)
        digests[name + " v2"] = sha256_file(os.path.join(export,
                                                         "model.json"))
    if len(set(digests.values())) != 1:
        die("the trainings gave different model.json files: %s" % digests)

    procs, server_cmds = start_ready(servers, slipway, work, SERVERS,
                                     SERVER_FLAGS)
    expected_roles = {"on": {1: "serving", 2: "shadow"}, "off": {1: "serving"}}
    for name, (_, port) in procs.items():
        got = roles(port)
        if got != expected_roles[name]:
            die("the server with %s serves the roles %s, not %s; see "
                "docs/app-spec.md, endpoint.shadow" % (
                    SERVERS[name][0], got, expected_roles[name]))

    booster = xgb.Booster(model_file=os.path.join(work, "export-on-v1",
                                                  "model.json"))
    booster.set_param({"nthread": 1})
    reference = booster.inplace_predict(np.asarray(rows, dtype=np.float32))
    check_lines, _ = check_answers(
        [("Slipway /v1 predict, %s" % label, procs[name][1], PREDICT_PATH,
          bodies["one_row"], 1) for name, (label, _) in SERVERS.items()],
        reference)
    with open(bodies["one_row"], "rb") as f:
        one_row = f.read()
    for name, (_, port) in procs.items():
        status, payload = http_call(port, "POST", PREDICT_PATH, one_row)
        answer = json.loads(payload) if status == 200 else {}
        if answer.get("model_version") != 1:
            die("the server with %s answered %d %s, not the champion's "
                "(version 1) prediction" % (SERVERS[name][0], status,
                                            payload[:300]))
    check_lines.append("- Both servers answered with `model_version` 1, "
                       "the champion; the shadow (version 2) never answers")

    before = {}
    for name, (_, port) in procs.items():
        before[name], _ = settled_counts(port, name == "on")

    def counted(name, result):
        """Adds what the server counted during the run to its result."""
        now, done = settled_counts(procs[name][1], name == "on")
        result["answered"] = now["answered"] - before[name]["answered"]
        for outcome in OUTCOMES:
            result["shadow_" + outcome] = now[outcome] - before[name][outcome]
        result["settled"] = done
        before[name] = now
        return result

    print("shadow: warm-up, %d s of wrk per server" % WARMUP_SECONDS,
          flush=True)
    for name in SERVERS:
        counted(name, run_wrk(procs[name][1], PREDICT_PATH,
                              bodies["one_row"], WARMUP_SECONDS)[1])

    def order(r):
        return list(SERVERS) if r % 2 == 0 else list(SERVERS)[::-1]

    commands = {}
    throughput = {name: [] for name in SERVERS}
    print("shadow: %d rounds of %d s wrk runs (%d connections), shadow on "
          "and off alternating first" % (rounds, seconds, CONNECTIONS),
          flush=True)
    for r in range(rounds):
        for name in order(r):
            commands["wrk"], result = run_wrk(procs[name][1], PREDICT_PATH,
                                              bodies["one_row"], seconds)
            throughput[name].append(counted(name, result))
            print("  round %d shadow %-3s %9.0f req/s  p99 %6.2f ms  errors "
                  "%d  shadow ok %d dropped %d error %d" % (
                      r + 1, name, result["rps"], result["p99_us"] / 1000,
                      result["errors"], result["shadow_ok"],
                      result["shadow_dropped"], result["shadow_error"]),
                  flush=True)

    saturated = min(statistics.median(x["rps"] for x in throughput[name])
                    for name in SERVERS)
    per_client = max(1, round(LOAD_FRACTION * saturated /
                              LATENCY_CONNECTIONS))
    latency = {name: [] for name in SERVERS}
    h2_log = os.path.join(work, "h2load.log")
    print("shadow: %d rounds of %d s h2load runs at %d req/s per connection "
          "x %d = %d req/s" % (rounds, seconds, per_client,
                               LATENCY_CONNECTIONS,
                               per_client * LATENCY_CONNECTIONS), flush=True)
    for r in range(rounds):
        for name in order(r):
            commands["h2load"], result = run_h2load(
                procs[name][1], PREDICT_PATH, bodies["one_row"], per_client,
                seconds, h2_log, LATENCY_CONNECTIONS)
            latency[name].append(counted(name, result))
            print("  round %d shadow %-3s %8.0f req/s  p50 %.3f ms  p99 "
                  "%.3f ms  non-200 %d  shadow ok %d dropped %d error %d" % (
                      r + 1, name, result["achieved_rps"], result["p50_ms"],
                      result["p99_ms"], result["non_200"],
                      result["shadow_ok"], result["shadow_dropped"],
                      result["shadow_error"]), flush=True)

    final = {name: counts(port) for name, (_, port) in procs.items()}
    final_roles = {name: roles(port) for name, (_, port) in procs.items()}
    peak = {name: peak_rss_kb(proc.pid) for name, (proc, _) in procs.items()}
    return {
        "throughput": throughput, "latency": latency,
        "saturated": saturated, "per_client": per_client,
        "commands": [shown(commands[k], work) for k in ("wrk", "h2load")],
        "server_cmds": [shown(server_cmds[n], work) for n in SERVERS],
        "check_lines": check_lines, "model_sha": digests["on v1"],
        "final": final, "final_roles": final_roles, "peak_rss_kb": peak,
        "body_bytes": os.path.getsize(bodies["one_row"]),
    }


def shadow_check(m):
    """Whether the shadow did its work: in every fixed-rate run, the shadow
    server's shadow predicted a copy of each request its champion answered
    (ok = answered, no error, none dropped), no run's counts failed to
    settle, the server without a shadow counted none, and the roles held
    to the end. Returns (ok, lines)."""
    on, off = m["final"]["on"], m["final"]["off"]

    def phase(runs):
        return {k: sum(x[k] for x in runs) for k in
                ["answered"] + ["shadow_" + o for o in OUTCOMES]}

    lat, thr = phase(m["latency"]["on"]), phase(m["throughput"]["on"])
    unsettled = sum(not x["settled"] for runs in m["latency"].values()
                    for x in runs) + sum(not x["settled"] for runs in
                                         m["throughput"].values() for x in runs)
    latency_ok = (lat["shadow_ok"] == lat["answered"] and
                  lat["shadow_error"] == 0 and lat["shadow_dropped"] == 0)
    off_none = all(off[o] == 0 for o in OUTCOMES)
    roles_kept = (m["final_roles"]["on"] == {1: "serving", 2: "shadow"} and
                  m["final_roles"]["off"] == {1: "serving"})
    ok = latency_ok and off_none and roles_kept and unsettled == 0 and \
        on["error"] == 0

    def share(n, total):
        return "%.1f%%" % (100 * n / total) if total else "-"

    lines = [
        "- Fixed-rate runs, shadow on: the champion answered %d requests; "
        "the shadow predicted %d copies ok (%s), %d failed (`error`), %d "
        "were dropped: %s" % (
            lat["answered"], lat["shadow_ok"],
            share(lat["shadow_ok"], lat["answered"]), lat["shadow_error"],
            lat["shadow_dropped"],
            "**every request shadowed**" if latency_ok else
            "**NOT every request shadowed**"),
        "- Saturating runs, shadow on: %d answered; %d copies ok (%s), %d "
        "`error`, %d `dropped` (a full shadow queue refuses copies rather "
        "than slow the champion)" % (
            thr["answered"], thr["shadow_ok"],
            share(thr["shadow_ok"], thr["answered"]), thr["shadow_error"],
            thr["shadow_dropped"]),
        "- Whole run, shadow on (the checks, the warm-up and every run): "
        "`%s` ok %d, error %d, dropped %d for %d answered requests" % (
            SHADOW_METRIC, on["ok"], on["error"], on["dropped"],
            on["answered"]),
        "- Whole run, no shadow: %d answered, no `%s` sample: %s" % (
            off["answered"], SHADOW_METRIC, "yes" if off_none else "**no**"),
        "- Roles at the end (`%s`): shadow on %s; no shadow %s" % (
            ROLE_METRIC, m["final_roles"]["on"], m["final_roles"]["off"]),
    ]
    if unsettled:
        lines.append("- **%d runs** ended with copies the shadow had not "
                     "handled %d s later" % (unsettled, SETTLE_SECONDS))
    return ok, lines


def section(m):
    """The part's section of bench/results/serving.md (lines, starting with
    its "## " heading), and whether the shadow did its work."""
    lat, thr, rounds = m["latency"], m["throughput"], m["rounds"]
    ok, check_lines = shadow_check(m)

    def ratios(runs, key):
        return [a[key] / b[key] for a, b in zip(runs["on"], runs["off"])]

    p99_ratios = ratios(lat, "p99_ms")
    p50_ratios = ratios(lat, "p50_ms")
    rps_ratios = ratios(thr, "rps")
    offered = m["per_client"] * LATENCY_CONNECTIONS
    kept_up = [r for r in range(rounds) if all(
        lat[name][r]["achieved_rps"] >= KEPT_UP * offered
        for name in SERVERS)]
    judged = [p99_ratios[r] for r in kept_up] or p99_ratios
    p99_cost = statistics.median(judged) - 1
    if not ok:
        result = "not judged (the shadow did not do its work)"
    elif len(kept_up) < MIN_ROUNDS:
        result = ("not judged (both servers kept up with the offered rate in "
                  "%d of %d rounds, fewer than %d; rerun on a quiet machine)"
                  % (len(kept_up), rounds, MIN_ROUNDS))
    else:
        result = "**met**" if p99_cost <= TARGET_P99 else "**MISSED**"
    if len(kept_up) == rounds:
        which = "of the %d rounds" % rounds
    elif kept_up:
        which = "of the %d rounds (of %d) in which both servers kept up" % (
            len(kept_up), rounds)
    else:
        which = "of all %d rounds, in none of which both servers kept up" % (
            rounds)

    out = ["## " + HEADING, "",
           "Measured %s by the shadow part of `bench/serving/run` (`make "
           "bench-serving` runs it after the comparison above; `--only "
           "shadow` runs it alone). The part took %.1f minutes." % (
               m["when"], m["minutes"]), ""]
    out += ["### Machine", ""]
    out += ["- %s: %s" % kv for kv in machine()]
    out += ["- Load average (1, 5, 15 min) at start: %s; at end: %s" % (
        m["load_start"], m["load_end"]),
        "- Slipway: %s" % slipway_build(m["build_dir"], m["slipway"]),
        "- Load generators: wrk %s, h2load (nghttp2-client) %s" % (
            dpkg_version("wrk"), dpkg_version("nghttp2-client")), ""]
    out += ["### Target", "", "| target | measured | result |",
            "|---|---|---|",
            "| a shadow adds ≤ %.0f%% to the client's p99 latency (/v1 "
            "single-row, %d req/s fixed rate) | p99 shadow on / off, median "
            "%s: %.3f (min–max %.3f–%.3f), %+.1f%% | %s |" % (
                100 * TARGET_P99, offered, which, statistics.median(judged),
                min(judged), max(judged), 100 * p99_cost, result), "",
            "Each round's ratio compares two runs back to back, one per "
            "server; the target is judged on the median of the ratios of the "
            "rounds in which both servers kept up with the offered rate "
            "(answered ≥ %.0f%% of it), and needs %d such rounds. Below 1: "
            "the server with a shadow was the faster one (noise). The "
            "shadow's own work also shows in p50 (on/off, median of the "
            "rounds: %.3f) and in the throughput cost (%.1f%%, below); p99 "
            "includes the time other processes hold the server's CPU (the "
            "load average above), which both servers suffer alike and which "
            "dilutes the shadow's share." % (
                100 * KEPT_UP, MIN_ROUNDS, statistics.median(p50_ratios),
                100 * (1 - statistics.median(rps_ratios))), ""]
    out += ["### Latency at a fixed rate (h2load, %d connections)" %
            LATENCY_CONNECTIONS, "",
            "%.0f%% of the slower server's median saturated throughput "
            "(%.0f req/s, below): `--rps %d` per connection × %d connections "
            "= %d req/s offered to each server. Percentiles are nearest-rank "
            "over every request h2load logged in the measured %d s (after "
            "%d s of warm-up); bunched: the share of requests that started "
            "within 20 µs of the previous one." % (
                100 * LOAD_FRACTION, m["saturated"], m["per_client"],
                LATENCY_CONNECTIONS, offered, m["seconds"],
                LATENCY_WARMUP_SECONDS), "",
            "| server | achieved req/s, median | p50 ms median (min–max) | "
            "p99 ms median (min–max) | max ms, worst run | bunched %, median "
            "| non-200 or failed |",
            "|---|---|---|---|---|---|---|"]
    for name, (label, _) in SERVERS.items():
        s = lat[name]
        out.append("| %s | %.0f | %s | %s | %.2f | %.0f | %d |" % (
            label, statistics.median(x["achieved_rps"] for x in s),
            cell([x["p50_ms"] for x in s], "%.3f"),
            cell([x["p99_ms"] for x in s], "%.3f"),
            max(x["max_ms"] for x in s),
            statistics.median(x["bunched_pct"] for x in s),
            sum(x["non_200"] + x["failed"] + x["errored"] for x in s)))
    def per_round(values):
        return ", ".join("%.3f%s" % (x, "" if r in kept_up else "*")
                         for r, x in enumerate(values))

    out += ["", "| ratio, shadow on / off | per round | median of all "
            "rounds |", "|---|---|---|",
            "| p99 | %s | %.3f |" % (per_round(p99_ratios),
                                     statistics.median(p99_ratios)),
            "| p50 | %s | %.3f |" % (per_round(p50_ratios),
                                     statistics.median(p50_ratios))]
    if len(kept_up) < rounds:
        out += ["", "\\* a round in which a server answered less than "
                "%.0f%% of the offered rate (every run below)." % (
                    100 * KEPT_UP)]
    out += ["", "### Throughput under saturation (wrk, %d connections)" %
            CONNECTIONS, "",
            "req/s counts status 200 answers only; errors: non-200 answers, "
            "socket errors and timeouts over all rounds. Cost = 1 − the "
            "median of the rounds' on/off ratios.", "",
            "| shadow on: req/s median (min–max) | no shadow: req/s median "
            "(min–max) | on/off per round | on/off median | cost | p99 ms "
            "median, on / off | errors, on / off |",
            "|---|---|---|---|---|---|---|",
            "| %s | %s | %s | %.3f | %.1f%% | %.2f / %.2f | %d / %d |" % (
                cell([x["rps"] for x in thr["on"]], "%.0f"),
                cell([x["rps"] for x in thr["off"]], "%.0f"),
                ", ".join("%.3f" % x for x in rps_ratios),
                statistics.median(rps_ratios),
                100 * (1 - statistics.median(rps_ratios)),
                statistics.median(x["p99_us"] for x in thr["on"]) / 1000,
                statistics.median(x["p99_us"] for x in thr["off"]) / 1000,
                sum(x["errors"] for x in thr["on"]),
                sum(x["errors"] for x in thr["off"]))]
    out += ["", "### Did the shadow run?", "",
            "From each server's /metrics after every run, once the shadow "
            "had handled the run's last copies (`%s` by outcome against "
            "`%s` with status 200 for the predict endpoint):" % (
                SHADOW_METRIC, REQUESTS_METRIC), ""]
    out += check_lines
    out += ["", "### Peak memory", "",
            "VmHWM (peak resident set, /proc/PID/status) after the last run: "
            "shadow on %.1f MiB (two versions loaded), no shadow %.1f MiB." % (
                m["peak_rss_kb"]["on"] / 1024, m["peak_rss_kb"]["off"] / 1024)]
    out += ["", "### Setup", "",
            "- Model: the comparison's — binary:logistic, %d trees, "
            "max_depth %d, one thread, trained by Slipway on %d generated "
            "rows of %d float features (numpy seed %d); model.json sha256 "
            "%s. Each server's app was trained twice (`slipway run %s train "
            "--wait`): version 1 promoted to champion (`slipway models "
            "promote %s 1`), version 2 given the challenger alias "
            "(`slipway models promote %s 2 --alias %s`, i.e. `PUT "
            "/api/v1/apps/%s/aliases/%s {\"version\": 2}`); all four "
            "trainings gave the same bytes, so the shadow's predictions cost "
            "what the champion's do." % (
                ROUNDS, DEPTH, TRAIN_ROWS, FEATURES, SEED, m["model_sha"],
                APP, APP, APP, CHALLENGER, APP, CHALLENGER),
            "- Two servers, each with its own data directory, the same spec "
            "(the comparison's; `endpoint.batching` and `monitor` at their "
            "defaults) but for `%s` in one of them. Both were restarted after "
            "training, so each only loads its models: the one with a shadow "
            "serves version 1 and shadows it with version 2, the other "
            "serves version 1 only." % SHADOW.strip(),
            "- CPUs: both servers `taskset -c %s` (their HTTP thread, the "
            "batchers, the prediction log and the monitor); the server with "
            "the shadow also `--shadow-cpus %s`, so the thread predicting "
            "the copies (idle priority) runs on CPU %s; wrk and h2load "
            "`taskset -c %s`." % (SERVER_CPU, CLIENT_CPU, CLIENT_CPU,
                                  CLIENT_CPU),
            "- Requests: the single-row /v1 body (%d bytes); keep-alive "
            "connections." % m["body_bytes"],
            "- Protocol: one untimed %d s wrk run per server, then %d rounds "
            "of %d s wrk runs, one per server back to back, the server with "
            "a shadow first in odd rounds and second in even ones; then %d "
            "rounds of fixed-rate h2load runs in the same order." % (
                WARMUP_SECONDS, rounds, m["seconds"], rounds),
            "", "Before timing, both servers answered the single-row body:",
            ""]
    out += m["check_lines"]
    out += ["", "### Commands", "", "```",
            "# servers: OMP_NUM_THREADS=1; WORK/data-on.yaml and "
            "WORK/data-off.yaml are the two specs"]
    out += m["server_cmds"]
    out += ["# load: BODY_FILE=WORK/one_row.json for wrk; the same wrk and "
            "h2load lines for both servers"] + m["commands"] + ["```"]
    out += ["", "### Every run", "",
            "answered: predict requests the server answered 200 during the "
            "run, by its own count; shadow ok / dropped / error: the copies "
            "of them its shadow handled.", "",
            "| round | load | shadow | req/s | p50 ms | p99 ms | answered | "
            "shadow ok / dropped / error |", "|---|---|---|---|---|---|---|---|"]
    for r in range(rounds):
        names = list(SERVERS) if r % 2 == 0 else list(SERVERS)[::-1]
        for load, runs in (("wrk", thr), ("h2load", lat)):
            for name in names:
                x = runs[name][r]
                if load == "wrk":
                    rps, p50, p99 = (x["rps"], x["p50_us"] / 1000,
                                     x["p99_us"] / 1000)
                else:
                    rps, p50, p99 = x["achieved_rps"], x["p50_ms"], x["p99_ms"]
                out.append("| %d | %s | %s | %.0f | %.3f | %.3f | %d | "
                           "%d / %d / %d |" % (
                               r + 1, load, name, rps, p50, p99,
                               x["answered"], x["shadow_ok"],
                               x["shadow_dropped"], x["shadow_error"]))
    print("\n".join([""] + out[out.index("### Target"):
                                out.index("### Peak memory")]), flush=True)
    return out, ok


def check_tools():
    """Dies naming the Debian packages to install when wrk, h2load or
    taskset is missing, or when the machine has fewer than 2 CPUs."""
    if os.cpu_count() < 2:
        die("the shadow part pins the servers to CPU 0 and the load "
            "generators to CPU 1; this machine has %d CPU" % os.cpu_count())
    missing = [pkg for tool, pkg in (("wrk", "wrk"),
                                     ("h2load", "nghttp2-client"),
                                     ("taskset", "util-linux"))
               if subprocess.run(["which", tool],
                                 capture_output=True).returncode != 0]
    if missing:
        die("missing packages; install them with: apt-get install -y "
            "--no-install-recommends " + " ".join(missing))
