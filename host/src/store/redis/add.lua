-- Adds increments to a counter's per-bucket hashes and returns each value after its
-- addition. A call already applied by an earlier attempt of the same batch (its mark is
-- in the journal) adds nothing again and returns what it returned then, kept in the
-- journal under its mark, so a rerun decides as the first attempt would have.
--
-- ARGV: counter key, journal key, call mark, then (key, bucket, delta) triples.
-- Keys: <counter>:<bucket> hash key -> value; <counter> zset of buckets.
local counter, journal, mark = ARGV[1], ARGV[2], ARGV[3]
local applied = redis.call('HGET', journal, mark)
if applied then
  local out = {}
  for value in string.gmatch(applied, '%d+') do
    out[#out + 1] = tonumber(value)
  end
  return out
end
local out = {}
for i = 4, #ARGV, 3 do
  local key, bucket, delta = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  out[#out + 1] = redis.call('HINCRBY', counter .. ':' .. bucket, key, delta)
  redis.call('ZADD', counter, bucket, bucket)
end
redis.call('HSET', journal, mark, table.concat(out, ','))
redis.call('PEXPIRE', journal, 86400000)
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
