-- wrk script for `make bench` (tests/bench/bench.py runs it; see tests/bench/README.md).
--
--   wrk ... -s bench.lua URL -- MODE KEYFILE [ARG]
--
-- MODE random: GET /<key>, a key drawn at random from KEYFILE (one per line) per request.
-- MODE walk:   GET every key of KEYFILE in order from line ARG on, the wrk threads (their
--              number is the next argument) taking turns; done() reports how far the slowest
--              thread got, so the caller knows which lines the pass covered.
-- MODE browse: as random, each request with the headers a browser sends after a click on
--              another site: a Referer and a browser User-Agent, taken from short lists.
-- MODE create: POST /api/v1/urls with a JSON body, Authorization: Bearer ARG (KEYFILE unused).
-- MODE bulk:   POST /api/v1/urls/bulk, a JSON array of N distinct create objects built anew for
--              every request, Authorization: Bearer ARG (args: - APIKEY N; KEYFILE unused).
--              Every answer is checked: a 200 whose items are N times "status":201, else it
--              counts in bulk_bad (reported as bad=, which the caller adds to the errors).
-- MODE unlock: POST /<ARG> with the form field password=PASSWORD, form-encoded (args:
--              - LINKKEY PASSWORD; KEYFILE unused): the password form of a protected link.
-- MODE get:    GET ARG (a path) every time, with Accept-Encoding: ARG2 when given (args: - PATH
--              [ENCODING]; KEYFILE unused): the web page, a QR code.
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

local ffi = require("ffi")

local mode, n, pos, step, auth, bulk_n, unlock_path, unlock_body, get_req
-- KEYFILE's lines as the paths "/<key>", one after another in a C buffer, and where each
-- starts (path i: paths[offsets[i - 1] .. offsets[i] - 1]). Held as a Lua table of strings,
-- the zipf group's 4 M draws (a million distinct keys) were live objects that every cycle of
-- LuaJIT's collector goes through, and nginx's `return 301` measured a p99 of 4-166 ms
-- against 4-6 ms for 1,000 keys. In C memory, which the collector does not look into, the
-- same draws give nginx 4-10 ms (README, "wrk's own pauses").
local paths, offsets

local function load_paths(file)
   local f = assert(io.open(file, "rb"))
   local text = f:read("*a")
   f:close()
   local len = #text
   local src = ffi.cast("const uint8_t *", text)
   local lines = 0
   for i = 0, len - 1 do
      if src[i] == 10 then
         lines = lines + 1
      end
   end
   if len > 0 and src[len - 1] ~= 10 then
      lines = lines + 1
   end
   -- One '/' per line in place of its newline.
   paths = ffi.new("uint8_t[?]", len + 1)
   offsets = ffi.new("uint32_t[?]", lines + 1)
   local out, start = 0, 0
   for i = 0, len do
      if i == len or src[i] == 10 then
         if i > start then
            offsets[n] = out
            paths[out] = 47
            ffi.copy(paths + out + 1, src + start, i - start)
            out = out + 1 + i - start
            n = n + 1
         end
         start = i + 1
      end
   end
   offsets[n] = out
end

local function path(i)
   local off = offsets[i - 1]
   return ffi.string(paths + off, offsets[i] - off)
end
-- A global, not a local: done() reads it from every thread with thread:get().
done_keys = 0
local sent = 0

local function form_escape(s)
   s = string.gsub(s, "[^%w%-%._~ ]", function(c)
      return string.format("%%%02X", string.byte(c))
   end)
   return (string.gsub(s, " ", "+"))
end

-- A bulk answer is right when it is a 200 with bulk_n items of "status":201 (compact JSON).
local function check_bulk(status, headers, body)
   local ok = 0
   if status == 200 and body then
      local _
      _, ok = string.gsub(body, '"status":201', "")
   end
   if ok ~= bulk_n then
      bulk_bad = bulk_bad + 1
   end
end

function init(args)
   mode = args[1]
   n = 0
   if mode == "random" or mode == "walk" or mode == "browse" then
      load_paths(args[2])
   end
   -- Distinct streams per thread, different on every run.
   math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
   if mode == "walk" then
      pos = tonumber(args[3]) + id - 1
      step = tonumber(args[4])
      done_keys = 0
   elseif mode == "create" then
      auth = "Bearer " .. args[3]
   elseif mode == "bulk" then
      auth = "Bearer " .. args[3]
      bulk_n = tonumber(args[4])
      -- Globals: done() reads bulk_bad with thread:get(). Defining response() only here keeps
      -- wrk from collecting bodies in the other modes (it asks for response() after init()).
      bulk_bad = 0
      response = check_bulk
   elseif mode == "unlock" then
      unlock_path = "/" .. args[3]
      unlock_body = "password=" .. form_escape(args[4])
   elseif mode == "get" then
      local headers = {}
      if args[4] then
         headers["Accept-Encoding"] = args[4]
      end
      get_req = wrk.format("GET", args[3], headers)
   end
end

local referers = {
   "https://news.ycombinator.com/item?id=40123456", "https://t.co/AbCdEf1234",
   "https://www.google.com/", "https://www.reddit.com/r/programming/comments/abc/x/",
   "https://mail.example.org/inbox",
}
local agents = {
   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " ..
      "Chrome/124.0.0.0 Safari/537.36",
   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, " ..
      "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
   "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) " ..
      "Version/17.4 Safari/605.1.15",
}

function request()
   if mode == "random" then
      return wrk.format("GET", path(math.random(n)))
   elseif mode == "browse" then
      return wrk.format("GET", path(math.random(n)), {
         ["Referer"] = referers[math.random(#referers)],
         ["User-Agent"] = agents[math.random(#agents)],
      })
   elseif mode == "walk" then
      local i = pos
      pos = pos + step
      if i > n then
         i = ((i - 1) % n) + 1
      else
         done_keys = done_keys + 1
      end
      return wrk.format("GET", path(i))
   elseif mode == "bulk" then
      -- Distinct URLs in every request: thread, request number, item.
      sent = sent + 1
      local items = {}
      for i = 1, bulk_n do
         items[i] = string.format('{"url":"https://example.com/bulk/%d/%d/%d"}', id, sent, i)
      end
      return wrk.format("POST", "/api/v1/urls/bulk", {
         ["Authorization"] = auth,
         ["Content-Type"] = "application/json",
      }, "[" .. table.concat(items, ",") .. "]")
   elseif mode == "get" then
      return get_req
   elseif mode == "unlock" then
      return wrk.format("POST", unlock_path, {
         ["Content-Type"] = "application/x-www-form-urlencoded",
      }, unlock_body)
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
   local bad
   for _, t in ipairs(threads) do
      local d = t:get("done_keys")
      if d ~= nil and (walked < 0 or d < walked) then
         walked = d
      end
      local b = t:get("bulk_bad")
      if b ~= nil then
         bad = (bad or 0) + b
      end
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "connect=%d read=%d write=%d status=%d timeout=%d threads=%d walked_min=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
      #threads, walked))
   if bad ~= nil then
      -- Only in bulk mode, so the other modes' line stays as it was.
      io.write(string.format("BENCH_BULK bad=%d\n", bad))
   end
end
