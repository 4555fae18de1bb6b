-- Adds sightings of keys a sidecar already knows (answered from its cache) to a
-- first-seen set: no answers, so they are sent folded, one entry per key.
--
-- ARGV: set key, forget_after, then (key, earliest, latest, sightings) quads.
local set, forget = ARGV[1], ARGV[2]
local meta, seen = set .. ':meta', set .. ':seen'
local start = tonumber(redis.call('HGET', meta, 'learning_start'))
local newest = tonumber(redis.call('HGET', meta, 'latest'))
for i = 3, #ARGV, 4 do
  local key = ARGV[i]
  local earliest, latest, count = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local first, last, total = earliest, latest, count
  local stored = redis.call('HGET', set, key)
  if stored then
    local f, l, c = string.match(stored, '^(-?%d+),(-?%d+),(%d+)$')
    first = math.min(tonumber(f), earliest)
    last = math.max(tonumber(l), latest)
    total = tonumber(c) + count
  end
  redis.call('HSET', set, key, string.format('%d,%d,%d', first, last, total))
  redis.call('ZADD', seen, last, key)
  if not start or earliest < start then start = earliest end
  if not newest or latest > newest then newest = latest end
end
if start then
  redis.call('HSET', meta, 'learning_start', string.format('%d', start),
    'latest', string.format('%d', newest), 'forget_after', forget)
end
return 0
