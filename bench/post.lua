-- wrk script for scripts/bench: POST the body in $BENCH_BODY to every request, and print the
-- figures as one JSON line (prefixed BENCH_JSON) for bench/run.py.
local path = assert(os.getenv("BENCH_BODY"), "set BENCH_BODY to the callback body file")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

-- BENCH_FRESH=1: every request gets its own TaskId (the path every real callback takes; a
-- repeated body is a duplicate after the first request). The body is split around the TaskId's
-- value once; each request joins the parts around "<thread>-<counter>".
local fresh = os.getenv("BENCH_FRESH") == "1"
local before, after
if fresh then
  local s, e = wrk.body:find('"TaskId"%s*:%s*"[^"]*"')
  assert(s, "BENCH_FRESH needs a body with a TaskId")
  local field = wrk.body:sub(s, e)
  local open = field:find('"', #'"TaskId"' + 1, true)
  before, after = wrk.body:sub(1, s + open - 1), wrk.body:sub(e)
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local counter = 0
function request()
  if not fresh then
    return wrk.request()
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, before .. "bench-" .. thread_id .. "-" .. counter .. after)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    math.floor(latency.mean)))
end
