-- Records sightings in one first-seen set, in order, and answers for each whether its
-- key is new: atomically, so among sidecars sharing the set exactly one sees a key new.
--
-- ARGV: set key, forget_after (ms, 0 = never), journal key, attempt, then (key, time) pairs.
-- Keys: <set> hash key -> "first,last,count"; <set>:seen zset key by last sighting;
-- <set>:meta hash learning_start, latest, forget_after; the batch journal (see redis.rs).
-- Returns one {is_new, set_size, learning_start, previous "first,last,count" or ""} per pair.
local set, forget, journal, attempt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local meta, seen = set .. ':meta', set .. ':seen'
local start = tonumber(redis.call('HGET', meta, 'learning_start'))
local latest = tonumber(redis.call('HGET', meta, 'latest'))
local claims = 0
local out = {}
for i = 5, #ARGV, 2 do
  local key, time = ARGV[i], tonumber(ARGV[i + 1])
  local size = redis.call('HLEN', set)
  local stored = redis.call('HGET', set, key)
  local mark = 'o|' .. set .. '|' .. key
  local claim = redis.call('HGET', journal, mark)
  local is_new, previous
  local claim_attempt, claim_size, claim_previous
  if claim then
    claim_attempt, claim_size, claim_previous = string.match(claim, '^(%d+)|(%d+)|(.*)$')
  end
  if claim and claim_attempt ~= attempt then
    -- An earlier attempt of this batch claimed the key and failed before committing:
    -- answer as it was answered then; the stored state already holds the sighting.
    redis.call('HSET', journal, mark, attempt .. '|' .. claim_size .. '|' .. claim_previous)
    is_new, size, previous = 1, tonumber(claim_size), claim_previous
  else
    local first, last, count
    if stored then
      first, last, count = string.match(stored, '^(-?%d+),(-?%d+),(%d+)$')
      first, last, count = tonumber(first), tonumber(last), tonumber(count)
    end
    previous = stored or ''
    if stored and (forget <= 0 or time - last <= forget) then
      is_new = 0
      first, last, count = math.min(first, time), math.max(last, time), count + 1
    else
      is_new = 1
      first, last, count = time, time, 1
      redis.call('HSET', journal, mark, attempt .. '|' .. size .. '|' .. previous)
      claims = claims + 1
    end
    redis.call('HSET', set, key, string.format('%d,%d,%d', first, last, count))
    redis.call('ZADD', seen, last, key)
  end
  if not start or time < start then start = time end
  if not latest or time > latest then latest = time end
  out[#out + 1] = {is_new, size, start, previous}
end
if start then
  redis.call('HSET', meta, 'learning_start', string.format('%d', start),
    'latest', string.format('%d', latest), 'forget_after', string.format('%d', forget))
end
if claims > 0 then
  redis.call('PEXPIRE', journal, 86400000)
end
-- Forgetting as expiry in event time: keys twice their window behind the newest
-- sighting are dropped, a few per call.
if forget > 0 and latest then
  local old = redis.call('ZRANGEBYSCORE', seen, '-inf', string.format('(%d', latest - 2 * forget), 'LIMIT', 0, 64)
  if #old > 0 then
    redis.call('HDEL', set, unpack(old))
    redis.call('ZREM', seen, unpack(old))
  end
end
return out
