-- check_sweep_csv.lua: checks the CSV of scripts/sweep_k.lua (spec.args[1]): the header, k = 1..8,
-- easyspec 0 (the default, exact drafting), acceptance in (0, 1], at least one token per target
-- step, positive speed and speedup.
local path = spec.args[1] or error("usage: specscope run check_sweep_csv.lua K.CSV", 0)
local f = assert(io.open(path, "r"))
local header = f:read("l")
local want = "k,easyspec,acceptance_rate,mean_accepted_length,tokens_per_s,speedup"
if header ~= want then error(("%s: header '%s', want '%s'"):format(path, tostring(header), want), 0) end
local rows = 0
for line in f:lines() do
  rows = rows + 1
  local k, easyspec, acceptance, mean_len, rate, speedup =
    line:match("^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$")
  k, easyspec, acceptance, mean_len, rate, speedup = tonumber(k), tonumber(easyspec), tonumber(acceptance),
                                                     tonumber(mean_len), tonumber(rate), tonumber(speedup)
  local function expect(ok, what)
    if not ok then error(("%s: row %d '%s': %s"):format(path, rows, line, what), 0) end
  end
  expect(k == rows, "k is not " .. rows)
  expect(easyspec == 0, "easyspec is not 0")
  expect(acceptance and acceptance > 0 and acceptance <= 1, "acceptance_rate not in (0, 1]")
  expect(mean_len and mean_len >= 1 and mean_len <= k + 1, "mean_accepted_length not in [1, k + 1]")
  expect(rate and rate > 0, "tokens_per_s not positive")
  expect(speedup and speedup > 0, "speedup not positive")
end
f:close()
if rows ~= 8 then error(("%s: %d rows, want 8"):format(path, rows), 0) end
print(("%s: 8 rows, header and values plausible"):format(path))
