-- wrk script for bench/load.py: replays prepared requests (or makes unique registrations), optionally
-- paced to a fixed rate, and prints one JSON line with counts per status and latency percentiles.
--   wrk ... -s bench/load.lua URL -- MODE FILE RATE THREADS
-- MODE: "file" (one request a line: METHOD \t PATH \t BODY \t COOKIE, each sent once, then the connection idles),
--       "register" (POST /api/register with a unique phone and email each time), "get" (GET FILE, e.g. /ping).
-- RATE: requests per second over all threads, 0 = as fast as the server answers.
-- HEADER, VALUE (optional, after THREADS): one request header for "get" and "file", e.g. If-None-Match "v1".
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now()  -- CLOCK_MONOTONIC, seconds: the same clock as Python's time.monotonic()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads, created = {}, 0
function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

local SLICE = 0.05  -- seconds: the timeline's resolution
local IDLE = 3600 * 1000  -- ms: a connection with nothing left to send waits out the run

function init(args)
  mode, source, nthreads = args[1], args[2], tonumber(args[4])
  if args[5] then extra = {[args[5]] = args[6]} end
  rate = tonumber(args[3]) / nthreads
  prepared, sent, answered, statuses, timeline = {}, 0, 0, {}, {}
  first, last = 0, 0
  if mode == "file" then
    local i = 0
    for line in io.lines(source) do
      if i % nthreads == id then
        local method, path, body, cookie = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
        local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
        if cookie ~= "" then headers["Cookie"] = cookie end
        if extra then for name, value in pairs(extra) do headers[name] = value end end
        prepared[#prepared + 1] = wrk.format(method, path, headers, body ~= "" and body or nil)
      end
      i = i + 1
    end
  end
end

function delay()
  sending = true
  if mode == "file" and sent >= #prepared then return IDLE end
  if rate <= 0 then return 0 end
  if not started then started = now() end
  local due = started + sent / rate
  return math.max(0, (due - now()) * 1000)
end

function request()
  -- wrk calls request() once on thread 0 before any connection, to check the script: that call must not use up
  -- a prepared line (it never goes out). delay() runs before every real request, so it says when they start.
  if not sending then return wrk.format("GET", "/ping") end
  sent = sent + 1
  if first == 0 then first = now() end
  if mode == "file" then
    -- A connection whose timer was set before the last line went out: filler the server refuses with 405,
    -- which bench/load.py leaves out of every count.
    return prepared[sent] or wrk.format("DELETE", "/ping")
  elseif mode == "register" then
    local n = id * 1000000 + sent
    local body = string.format(
      '{"name": "Bench %d", "email": "bench%d@example.com", "phone": "+1628%07d", "company": "Bench", "consent": true}',
      n, n, 2000000 + n)
    return wrk.format("POST", "/api/register", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", source, extra)
end

function response(status, headers, body)
  answered = answered + 1
  last = now()
  if first > 0 then  -- answers per SLICE seconds from the first request: where a drain's time goes
    local slice = math.floor((last - first) / SLICE) + 1
    timeline[slice] = (timeline[slice] or 0) + 1
  end
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if status ~= 405 then real = (real or 0) + 1 end
  -- file mode: every prepared line answered; FILE.done tells bench/load.py it can stop wrk (SIGINT)
  if mode == "file" and real == #prepared and nthreads == 1 then io.open(source .. ".done", "w"):close() end
end

function done(summary, latency, requests)
  local total, counts, t0, t1, slices = 0, {}, math.huge, 0, {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("answered")
    local f, l = thread:get("first"), thread:get("last")
    if f > 0 then t0 = math.min(t0, f) end
    t1 = math.max(t1, l)
    for status, n in pairs(thread:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  local timeline = threads[1]:get("timeline")  -- one thread's (the bench runs wrk with -t1)
  local n = 0
  for slice in pairs(timeline) do n = math.max(n, slice) end
  for slice = 1, n do slices[slice] = tostring(timeline[slice] or 0) end
  local parts = {}
  for status, n in pairs(counts) do parts[#parts + 1] = string.format('"%s": %d', status, n) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"answered": %d, "first": %.6f, "last": %.6f, "statuses": {%s}, "socket_errors": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "timeline": [%s]}\n',
    total, t0 == math.huge and 0 or t0, t1, table.concat(parts, ", "),
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, table.concat(slices, ", ")))
end
