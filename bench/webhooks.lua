-- wrk script: POSTs the pre-signed, distinct events of bench/webhook_events.py in turn.
-- With -t2, thread 0 sends the even events and thread 1 the odd ones: none is sent twice.
local events = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_EVENTS")) do
    local signature, body = line:match("^([^\t]+)\t(.*)$")
    events[#events + 1] = { signature, body }
  end
end

function request()
  index = ((index or id) + 2) % #events
  local e = events[index + 1]
  return wrk.format("POST", "/webhooks/stripe", {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = e[1],
  }, e[2])
end

function done(summary, latency, requests)
  io.write(string.format("acknowledged: %d of %d requests (non-2xx: %d)\n",
    summary.requests - summary.errors.status, summary.requests, summary.errors.status))
end
