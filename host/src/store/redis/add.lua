-- Adds increments to a counter's per-bucket hashes and returns each value after its
-- addition. A call already applied by an earlier attempt of the same batch (its mark is
-- in the journal) adds nothing again and returns the current values.
--
-- ARGV: counter key, journal key, call mark, then (key, bucket, delta) triples.
-- Keys: <counter>:<bucket> hash key -> value; <counter> zset of buckets.
local counter, journal, mark = ARGV[1], ARGV[2], ARGV[3]
local replay = redis.call('HSETNX', journal, mark, 1) == 0
redis.call('PEXPIRE', journal, 86400000)
local out = {}
for i = 4, #ARGV, 3 do
  local key, bucket, delta = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local hash = counter .. ':' .. bucket
  if replay then
    out[#out + 1] = tonumber(redis.call('HGET', hash, key)) or delta
  else
    out[#out + 1] = redis.call('HINCRBY', hash, key, delta)
    redis.call('ZADD', counter, bucket, bucket)
  end
end
-- Buckets a week behind the newest are dropped, a few per call.
local newest = redis.call('ZRANGE', counter, -1, -1, 'WITHSCORES')
if #newest == 2 then
  local old = redis.call('ZRANGEBYSCORE', counter, '-inf',
    string.format('(%d', tonumber(newest[2]) - 604800000), 'LIMIT', 0, 16)
  for _, bucket in ipairs(old) do
    redis.call('DEL', counter .. ':' .. bucket)
  end
  if #old > 0 then
    redis.call('ZREM', counter, unpack(old))
  end
end
return out
