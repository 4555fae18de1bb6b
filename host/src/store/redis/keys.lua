-- Lists a first-seen set: its keys and their "first,last,count" entries, flat.
--
-- ARGV: set key.
return redis.call('HGETALL', ARGV[1])
