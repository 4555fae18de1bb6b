-- Moves values between numbers in a series' per-bucket histograms (value -> frequency).
-- A call already applied by an earlier attempt of the same batch is not applied again.
--
-- ARGV: series key, journal key, call mark, then (bucket, previous, current) triples;
-- previous 0 adds a value, current 0 removes one.
-- Keys: <series>:<bucket> hash value -> frequency; <series> zset of buckets.
local series, journal, mark = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HSETNX', journal, mark, 1) == 0 then
  return 0
end
redis.call('PEXPIRE', journal, 86400000)
for i = 4, #ARGV, 3 do
  local bucket, previous, current = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local hash = series .. ':' .. bucket
  if previous ~= '0' and redis.call('HINCRBY', hash, previous, -1) <= 0 then
    redis.call('HDEL', hash, previous)
  end
  if current ~= '0' then
    redis.call('HINCRBY', hash, current, 1)
  end
  redis.call('ZADD', series, bucket, bucket)
end
return 1
