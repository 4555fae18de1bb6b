-- The per-bucket histograms of a series over buckets from..to.
--
-- ARGV: series key, from, to.
-- Returns {bucket, {value, frequency, ...}} per bucket holding values.
local series = ARGV[1]
local out = {}
for _, bucket in ipairs(redis.call('ZRANGEBYSCORE', series, ARGV[2], ARGV[3])) do
  out[#out + 1] = {bucket, redis.call('HGETALL', series .. ':' .. bucket)}
end
return out
