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
--
-- At the end it prints one JSON line (bench.py reads the last line):
-- requests, seconds, non-2xx answers, socket errors, latency percentiles
-- in microseconds.

local workload = os.getenv("WORKLOAD") or "get"
local items = tonumber(os.getenv("ITEMS") or "1000")
local users = tonumber(os.getenv("USERS") or "10")
local page2 = os.getenv("PAGE2") or "/items?userId=u0&limit=20"
local run = os.getenv("RUN") or "run"

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

local function get()
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

-- The oldest item this thread created and has not deleted yet; creates
-- (20%) outnumber deletes (5%), so it was answered long ago.
local function delete()
  if first_created > #created - 16 then
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

function request()
  return chosen()
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
