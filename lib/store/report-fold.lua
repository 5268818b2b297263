#!lua
-- Fold every entry of the report log into the month hashes
-- (report-fold.inc.lua), for a reader of the counters (sukictl report).
-- ARGV[1] the key prefix P. Returns the entries folded.
--! include redis-now.inc.lua
--! include report-fold.inc.lua
return report_fold(ARGV[1], now, 0)
