-- wrk script for scripts/load: one mode per run, chosen by the environment.
--
--   LOAD_MODE=decode   POST /v1/qr/decode with a fresh decodeRequestId per request (so every request
--                      is a real decode, not an idempotent replay); LOAD_CODE is the QR payload,
--                      LOAD_PAYER_CURRENCY the payer's currency (default MYR).
--   LOAD_MODE=healthz  GET /healthz: the HTTP floor of the same server (routing, hyper, the socket).
--   LOAD_MODE=pay      whole payments: decode -> quote -> pay, chained on each connection (run it
--                      with one connection per wrk thread, so a thread's responses come back in
--                      the order of its requests); a new customer for each payment, so the demo's
--                      per-customer daily limits are not what is measured. Dynamic codes only
--                      (the quote carries no amount).
--
-- Requests are unsigned: the embedded demo (`qrbridge serve`) runs with authentication off. At the
-- end it prints one machine-readable line, `QRB key=value ...`, that scripts/load turns into a table.

local mode = os.getenv("LOAD_MODE") or "decode"
local code = os.getenv("LOAD_CODE") or ""
local payer = os.getenv("LOAD_PAYER_CURRENCY") or "MYR"
local run_id = os.getenv("LOAD_RUN_ID") or tostring(os.time())
local threads = {}

-- Per-step latency in pay mode needs a microsecond clock: LuaJIT's FFI (Debian's wrk is built on
-- LuaJIT). Without it the pay run still counts payments, only the per-step figures are missing.
local have_clock, ffi = pcall(require, "ffi")
local now_us = function() return 0 end
if have_clock then
  have_clock = pcall(ffi.cdef, [[
    typedef struct { long tv_sec; long tv_nsec; } qrb_timespec;
    int clock_gettime(int clk_id, qrb_timespec *tp);
  ]])
  if have_clock then
    local ts = ffi.new("qrb_timespec")
    now_us = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
    end
  end
end

local function json_string(s)
  return (s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end))
end

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  counter = 0
  statuses = {}
  escaped_code = json_string(code)
  step = "decode"  -- pay mode: the next request of this thread's connection
  paid = 0         -- pay mode: payments answered SUCCESS
  broken = 0       -- pay mode: flows abandoned on a non-200 answer
  sent_at = 0      -- pay mode: when the request in flight was handed to wrk
  -- pay mode: microseconds per request, one flat list per step (wrk copies only flat tables
  -- out of a thread)
  samples_decode, samples_quote, samples_pay = {}, {}, {}
end

local json_headers = { ["content-type"] = "application/json" }

local function decode_request(customer)
  counter = counter + 1
  local body = string.format(
    '{"decodeRequestId":"load-%s-%d-%d","customerId":"%s","codeValue":"%s","payerCurrency":"%s"}',
    run_id, tid, counter, customer, escaped_code, payer)
  return wrk.format("POST", "/v1/qr/decode", json_headers, body)
end

function request()
  if mode == "healthz" then
    return wrk.format("GET", "/healthz")
  end
  if mode ~= "pay" then
    return decode_request("load-customer-" .. tid)
  end
  sent_at = now_us()
  if step == "quote" then
    local body = string.format(
      '{"quoteRequestId":"load-q-%s-%d-%d","decodeId":"%s","payerCurrency":"%s"}',
      run_id, tid, counter, decode_id, payer)
    return wrk.format("POST", "/v1/quotes", json_headers, body)
  elseif step == "pay" then
    local body = string.format(
      '{"paymentRequestId":"load-p-%s-%d-%d","quoteId":"%s","customerId":"c-%s-%d-%d"}',
      run_id, tid, counter, quote_id, run_id, tid, counter)
    return wrk.format("POST", "/v1/payments", json_headers, body)
  end
  return decode_request(string.format("c-%s-%d-%d", run_id, tid, counter + 1))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if mode ~= "pay" then return end
  if have_clock then
    local list = (step == "decode" and samples_decode) or (step == "quote" and samples_quote)
      or samples_pay
    list[#list + 1] = now_us() - sent_at
  end
  if status ~= 200 then
    broken = broken + 1
    step = "decode"
  elseif step == "decode" then
    decode_id = body:match('"decodeId":"([^"]+)"')
    step = decode_id and "quote" or "decode"
  elseif step == "quote" then
    quote_id = body:match('"quoteId":"([^"]+)"')
    step = quote_id and "pay" or "decode"
  else
    if body:find('"paymentStatus":"SUCCESS"', 1, true) then paid = paid + 1 end
    step = "decode"
  end
end

function done(summary, latency, requests)
  local by_status, payments, abandoned = {}, 0, 0
  for _, t in ipairs(threads) do
    payments = payments + (t:get("paid") or 0)
    abandoned = abandoned + (t:get("broken") or 0)
    -- thread:get copies the table out of the thread's Lua state
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do by_status[k] = (by_status[k] or 0) + v end
  end
  local ok, other, shown = 0, 0, {}
  for k, v in pairs(by_status) do
    if k == 200 then ok = ok + v else other = other + v end
    table.insert(shown, string.format("%d:%d", k, v))
  end
  table.sort(shown)
  local steps = ""
  if mode == "pay" and have_clock then
    for _, step in ipairs({ "decode", "quote", "pay" }) do
      local all = {}
      for _, t in ipairs(threads) do
        for _, v in ipairs(t:get("samples_" .. step) or {}) do all[#all + 1] = v end
      end
      table.sort(all)
      local function pct(p)
        if #all == 0 then return 0 end
        return all[math.max(1, math.ceil(#all * p / 100))]
      end
      steps = steps .. string.format("%s_n=%d %s_p50_us=%d %s_p99_us=%d ",
        step, #all, step, pct(50), step, pct(99))
    end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "QRB mode=%s requests=%d seconds=%.2f rps=%.1f ok=%d non200=%d socket_errors=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d payments=%d payments_per_s=%.1f abandoned=%d " ..
    "%sstatuses=%s\n",
    mode, summary.requests, seconds, summary.requests / seconds, ok, other,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    payments, payments / seconds, abandoned, steps, table.concat(shown, ",")))
end
