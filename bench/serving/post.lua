-- wrk script of bench/serving/run: POSTs the file named by the environment
-- variable BODY_FILE on every request (read once, so wrk sends one static
-- request and keeps its fast path), with the "Name: value" header lines of
-- the file HEADERS_FILE when it is set, and prints one JSON line of counts
-- and latency percentiles when the run ends.
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "set BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local headers_file = os.getenv("HEADERS_FILE")
if headers_file then
  for line in io.lines(headers_file) do
    local name, value = line:match("^([^:]+): (.*)$")
    if name then wrk.headers[name] = value end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
