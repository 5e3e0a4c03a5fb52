-- The `trackinfo` INFO section for redis_exporter's --script option (EVAL or EVAL_RO, no keys):
-- returns each numeric trackinfo_* field and its value, which redis_exporter exports as
--   redis_script_values{key="trackinfo_<field>", filename="<this file's path>"}
-- Fields whose value is a word (trackinfo_key_table, trackinfo_counters) are left out: the
-- exporter rejects the whole reply when one value is not a number.
local out = {}
for name, value in string.gmatch(redis.call('INFO', 'trackinfo'), '(trackinfo_[%w_]+):(%-?%d+)\r\n') do
  out[#out + 1] = name
  out[#out + 1] = value
end
return out
