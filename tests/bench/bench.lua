-- wrk script for `make bench` (tests/bench/bench.py runs it; see tests/bench/README.md).
--
--   wrk ... -s bench.lua URL -- MODE KEYFILE [ARG]
--
-- MODE random: GET /<key>, a key drawn at random from KEYFILE (one per line) per request.
-- MODE walk:   GET every key of KEYFILE in order from line ARG on, the wrk threads (their
--              number is the next argument) taking turns; done() reports how far the slowest
--              thread got, so the caller knows which lines the pass covered.
-- MODE create: POST /api/v1/urls with a JSON body, Authorization: Bearer ARG (KEYFILE unused).
--
-- done() prints one line "BENCH k=v ..." with the exact counts and latency percentiles, so
-- the caller need not parse wrk's rounded text report.

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local mode, keys, n, pos, step, auth
-- A global, not a local: done() reads it from every thread with thread:get().
done_keys = 0
local sent = 0

function init(args)
   mode = args[1]
   keys, n = {}, 0
   if mode ~= "create" then
      for line in io.lines(args[2]) do
         n = n + 1
         keys[n] = line
      end
   end
   -- Distinct streams per thread, different on every run.
   math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
   if mode == "walk" then
      pos = tonumber(args[3]) + id - 1
      step = tonumber(args[4])
      done_keys = 0
   elseif mode == "create" then
      auth = "Bearer " .. args[3]
   end
end

function request()
   if mode == "random" then
      return wrk.format("GET", "/" .. keys[math.random(n)])
   elseif mode == "walk" then
      local i = pos
      pos = pos + step
      if i > n then
         i = ((i - 1) % n) + 1
      else
         done_keys = done_keys + 1
      end
      return wrk.format("GET", "/" .. keys[i])
   else
      sent = sent + 1
      local body = string.format('{"url":"https://example.com/bench/%d/%d/%d"}', id, sent,
                                 math.random(1000000000))
      return wrk.format("POST", "/api/v1/urls", {
         ["Authorization"] = auth,
         ["Content-Type"] = "application/json",
      }, body)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local walked = -1
   for _, t in ipairs(threads) do
      local d = t:get("done_keys")
      if d ~= nil and (walked < 0 or d < walked) then
         walked = d
      end
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "connect=%d read=%d write=%d status=%d timeout=%d threads=%d walked_min=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
      #threads, walked))
end
