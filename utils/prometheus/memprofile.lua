-- Exports the memory profile of INFO rdb_stats through prometheus-redis-exporter:
--
--   prometheus-redis-exporter -redis.addr redis://HOST:PORT -script memprofile.lua
--
-- The exporter runs this script with EVAL on every scrape and exports each
-- pair of the flat array it returns as redis_script_values{key="<name>"}
-- (and redis_script_result 1 when the script ran). Every value must parse
-- as a number, or the exporter drops the whole result.
--
-- Keys returned:
--   every numeric field of INFO rdb_stats, under its INFO name
--     (rdb_stats_<type>_bytes, rdb_stats_<type>_<encoding>_keys,
--      rdb_stats_ttl_<bucket>_bytes, rdb_stats_db<N>_keys, mem_*, ...)
--   rdb_stats_status          1 ok, 0 no profile yet, -1 the last profile failed
--   rdb_stats_source          1 bgsave, 2 profile (MEMORY PROFILE START or the interval), 0 none
--   rdb_stats_age_seconds     now minus rdb_stats_last_time (only once a profile exists)
--   rdb_stats_budget_<target>_level   per budget (memory-profile-budgets; the target as INFO
--                             writes it, group_sessions, type_hash, db_0, ...): 0 ok, 1 warning,
--                             2 over, -1 unknown (the profile lacks the figure: a group it did
--                             not count)
--   the growth and forecast fields are numeric and pass as they are:
--     rdb_stats_forecast_profiles, rdb_stats_growth_bytes_per_hour,
--     rdb_stats_growth_rss_bytes_per_hour, rdb_stats_forecast_maxmemory_seconds,
--     rdb_stats_group_<name>_growth_bytes_per_hour and, per budget,
--     rdb_stats_budget_<target>_limit, _bytes, _growth_bytes_per_hour, _forecast_seconds
--     (signed: a shrinking figure's growth is negative; -1 for what is not known)
--   memprofile_info_available 1 when the server has the rdb_stats section, 0 otherwise
-- memprofile.rules.yml turns these into labelled metrics (valkey_memprofile_*).

local out = {}
local info = redis.call('INFO', 'rdb_stats')
local fields = {}
for line in string.gmatch(info, '[^\r\n]+') do
    local name, value = string.match(line, '^([%w_]+):(.*)$')
    if name then
        fields[name] = value
    end
end

if fields['rdb_stats_status'] == nil then
    return {'memprofile_info_available', '0'}
end
table.insert(out, 'memprofile_info_available')
table.insert(out, '1')

local status_codes = {ok = '1', none = '0', err = '-1'}
local source_codes = {bgsave = '1', profile = '2', none = '0'}
local level_codes = {ok = '0', warning = '1', over = '2', unknown = '-1'}

for name, value in pairs(fields) do
    if name == 'rdb_stats_status' then
        table.insert(out, name)
        table.insert(out, status_codes[value] or '-1')
    elseif name == 'rdb_stats_source' then
        table.insert(out, name)
        table.insert(out, source_codes[value] or '0')
    elseif string.match(name, '^rdb_stats_budget_[%w_]+_level$') then
        table.insert(out, name)
        table.insert(out, level_codes[value] or '-1')
    elseif string.match(value, '^%-?%d+$') then
        -- Kept as the server's own decimal string: no float formatting on the
        -- way, so byte counts reach Prometheus exactly.
        table.insert(out, name)
        table.insert(out, value)
    end
end

local last = tonumber(fields['rdb_stats_last_time'] or '0') or 0
if last > 0 then
    local now = redis.call('TIME')
    table.insert(out, 'rdb_stats_age_seconds')
    table.insert(out, string.format('%d', tonumber(now[1]) - last))
end

return out
