-- Starts or continues the episode of one key of a first-seen set (an incident of one
-- risk object): atomically, so among sidecars sharing the set exactly one starts it.
-- The key's entry "first,last,count" holds the episode's start, its latest activity and
-- its generation (how many episodes the key has had). An episode continues while
-- activity comes within the window of the latest; its start never moves.
--
-- ARGV: set key, key, time, window (ms), journal key, attempt.
-- Returns {generation, start, started (1 or 0)}.
local set, key, time, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local journal, attempt = ARGV[5], ARGV[6]
local mark = 'e|' .. set .. '|' .. key
local claim = redis.call('HGET', journal, mark)
if claim then
  local claim_attempt, generation, start = string.match(claim, '^(%d+)|(%d+)|(-?%d+)$')
  if claim_attempt ~= attempt then
    -- An earlier attempt of this batch started the episode and failed before
    -- committing: answer as it was answered then.
    redis.call('HSET', journal, mark, attempt .. '|' .. generation .. '|' .. start)
    return {tonumber(generation), tonumber(start), 1}
  end
end
local start, last, generation, started = time, time, 1, 1
local stored = redis.call('HGET', set, key)
if stored then
  local f, l, c = string.match(stored, '^(-?%d+),(-?%d+),(%d+)$')
  f, l, c = tonumber(f), tonumber(l), tonumber(c)
  if time - l <= window then
    start, last, generation, started = f, math.max(l, time), c, 0
  else
    generation = c + 1
  end
end
if started == 1 then
  redis.call('HSET', journal, mark, attempt .. '|' .. generation .. '|' .. start)
  redis.call('PEXPIRE', journal, 86400000)
end
redis.call('HSET', set, key, string.format('%d,%d,%d', start, last, generation))
redis.call('ZADD', set .. ':seen', last, key)
return {generation, start, started}
