-- One workload of the benchmark (benches/bench.py), for wrk. Every system
-- serves the same HTTP contract, so this one script drives them all.
--
-- Environment:
--   WORKLOAD  get | post | patch | likes | query | page2 | mix
--   ITEMS     how many items bench.py created first, ids bench-0..ITEMS-1
--   USERS     how many users own them, u0..u(USERS-1)
--   PAGE2     the path of the second page of u0's list (bench.py asks
--             each system for its own cursor)
--   RUN       a word unique to this run, so that created ids never clash
--   RAW_TABLE when set, `get` is a raw DynamoDB GetItem of that table sent
--             straight at DynamoDB Local (the floor every DynamoDB system
--             stands on; DynamoDB Local does not check the signature)
--
-- At the end it prints one JSON line (bench.py reads the last line):
-- requests, seconds, non-2xx answers, socket errors, latency percentiles
-- in microseconds.

local workload = os.getenv("WORKLOAD") or "get"
local items = tonumber(os.getenv("ITEMS") or "1000")
local users = tonumber(os.getenv("USERS") or "10")
local page2 = os.getenv("PAGE2") or "/items?userId=u0&limit=20"
local run = os.getenv("RUN") or "run"
local raw_table = os.getenv("RAW_TABLE") or ""

local threads = {}
local counter = 0
local created = {}
local first_created = 1

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
end

local json_headers = { ["Content-Type"] = "application/json" }
local patch_headers = { ["Content-Type"] = "application/json", ["If-Match"] = "*" }

local function an_item()
  return "/items/bench-" .. math.random(0, items - 1)
end

local raw_headers = {
  ["Content-Type"] = "application/x-amz-json-1.0",
  ["X-Amz-Target"] = "DynamoDB_20120810.GetItem",
  ["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, " ..
    "SignedHeaders=host, Signature=00",
}

local function get()
  if raw_table ~= "" then
    local body = string.format('{"TableName": "%s", "Key": {"itemId": {"S": "bench-%d"}}}',
      raw_table, math.random(0, items - 1))
    return wrk.format("POST", "/", raw_headers, body)
  end
  return wrk.format("GET", an_item())
end

local function create(with_id)
  counter = counter + 1
  local user = "u" .. math.random(0, users - 1)
  local id = ""
  if with_id then
    id = string.format('"id": "%s-%d-%d", ', run, thread_id or 0, counter)
    table.insert(created, string.format("%s-%d-%d", run, thread_id or 0, counter))
  end
  local body = string.format(
    '{%s"name": "My Item", "description": "A great item", "likes": 0, "userId": "%s", "status": "active"}',
    id, user)
  return wrk.format("POST", "/items", json_headers, body)
end

local function patch()
  counter = counter + 1
  return wrk.format("PATCH", an_item(), patch_headers,
    string.format('{"name": "renamed %d"}', counter))
end

local function likes()
  return wrk.format("POST", an_item() .. "/likes", json_headers, "{}")
end

local function query()
  return wrk.format("GET", "/items?userId=u" .. math.random(0, users - 1) .. "&limit=20")
end

-- The oldest item this thread created and has not deleted yet, at least
-- 64 creates back; creates (20%) outnumber deletes (5%), so it was
-- usually answered long ago (a system with a long tail may still hold it).
local function delete()
  if first_created > #created - 64 then
    return get()
  end
  local id = created[first_created]
  first_created = first_created + 1
  return wrk.format("DELETE", "/items/" .. id)
end

-- The Item Tracker mix: 50% get, 20% create, 15% update, 10% query,
-- 5% delete.
local function mix()
  local roll = math.random(1, 100)
  if roll <= 50 then return get()
  elseif roll <= 70 then return create(true)
  elseif roll <= 85 then return patch()
  elseif roll <= 95 then return query()
  else return delete()
  end
end

local workloads = {
  get = get,
  post = function() return create(false) end,
  patch = patch,
  likes = likes,
  query = query,
  page2 = function() return wrk.format("GET", page2) end,
  mix = mix,
}

local chosen = workloads[workload]
if chosen == nil then
  error("unknown WORKLOAD " .. workload)
end

-- wrk builds one request on the first thread only to verify the script,
-- and throws it away; a create there would never be sent, and the mix
-- would later delete an item that does not exist. The first request of
-- every thread is therefore a harmless read.
local first = true

function request()
  if first then
    first = false
    if workload ~= "page2" then
      return get()
    end
  end
  return chosen()
end

-- With COUNT_STATUSES set (the smoke run: parsing every answer in Lua
-- costs throughput), each thread counts its non-2xx answers by status.
local counted = { 400, 404, 409, 412, 422, 429, 500, 502, 503, 504 }
if os.getenv("COUNT_STATUSES") then
  function response(status, headers, body)
    if status >= 300 then
      local name = "status_other"
      for _, s in ipairs(counted) do
        if s == status then name = "status_" .. s end
      end
      _G[name] = (_G[name] or 0) + 1
    end
  end
end

local function statuses()
  local parts = {}
  for _, name in ipairs({ "400", "404", "409", "412", "422", "429", "500", "502", "503", "504", "other" }) do
    local n = 0
    for _, thread in ipairs(threads) do
      n = n + (thread:get("status_" .. name) or 0)
    end
    if n > 0 then table.insert(parts, string.format('"%s": %d', name, n)) end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"statuses": %s}\n',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, statuses()))
end
