-- Moves values between numbers in a series' per-bucket histograms (value -> frequency).
-- Each change carries the mark of the detector call it came from; a call already
-- applied by an earlier attempt of the same batch (its mark is in the journal) is not
-- applied again.
--
-- ARGV: series key, journal key, then (mark, bucket, previous, current) quads;
-- previous 0 adds a value, current 0 removes one.
-- Keys: <series>:<bucket> hash value -> frequency; <series> zset of buckets.
local series, journal = ARGV[1], ARGV[2]
local fresh = {}
for i = 3, #ARGV, 4 do
  local mark, bucket, previous, current = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if fresh[mark] == nil then
    fresh[mark] = redis.call('HSETNX', journal, mark, 1) == 1
  end
  if fresh[mark] then
    local hash = series .. ':' .. bucket
    if previous ~= '0' and redis.call('HINCRBY', hash, previous, -1) <= 0 then
      redis.call('HDEL', hash, previous)
    end
    if current ~= '0' then
      redis.call('HINCRBY', hash, current, 1)
    end
    redis.call('ZADD', series, bucket, bucket)
  end
end
redis.call('PEXPIRE', journal, 86400000)
return 0
