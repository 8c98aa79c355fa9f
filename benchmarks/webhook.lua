-- wrk script: every request is a new customer's messages.upsert (Evolution 2.3 envelope), spread over
-- BENCH_INSTANCES instances, so the watchdog's pending table fills and then evicts. Loopback only;
-- wrk's -d bounds the run. done() prints one JSON line the suite parses.
local instances = tonumber(os.getenv("BENCH_INSTANCES") or "1000")
local next_id = 0
local counter = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local template = '{"event":"messages.upsert","instance":"%s","data":{"key":{"remoteJid":"%s",'
  .. '"fromMe":false,"id":"BENCH%d"},"pushName":"Cliente","status":"DELIVERY_ACK",'
  .. '"message":{"conversation":"Oi, tudo bem? Qual o horario de funcionamento hoje?"},'
  .. '"contextInfo":{},"messageType":"conversation","messageTimestamp":1764000000,'
  .. '"instanceId":"6f1c2a9e-0000-4000-8000-000000000000","source":"android"},'
  .. '"destination":"http://127.0.0.1/webhook/evolution","date_time":"2025-11-25T01:00:00.000Z",'
  .. '"sender":"5511999990000@s.whatsapp.net","server_url":"http://127.0.0.1:8080",'
  .. '"apikey":"bench-not-a-secret"}'
local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  local n = (thread_id or 0) * 1000000000 + (tonumber(os.getenv("BENCH_OFFSET") or "0")) + counter
  local body = string.format(template, string.format("inst-%04d", n % instances),
    string.format("55%011d@s.whatsapp.net", n), n)
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,'
    .. '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
