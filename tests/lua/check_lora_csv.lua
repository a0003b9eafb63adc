-- check_lora_csv.lua: checks the CSV of scripts/sweep_lora_scale.lua run with --scales 0,1
-- (spec.args[1]): the header, one row a scale in order, no update at scale 0 and one at 1, the
-- acceptance a rate, positive speed and speedup.
local path = spec.args[1] or error("usage: specscope run check_lora_csv.lua LORA.CSV", 0)
local f = assert(io.open(path, "r"))
local header = f:read("l")
local want = "scale,acceptance_rate,mean_accepted_length,tokens_per_s,speedup,mean_rel,max_rel"
if header ~= want then error(("%s: header '%s', want '%s'"):format(path, tostring(header), want), 0) end
local scales, rows = {0, 1}, 0
for line in f:lines() do
  rows = rows + 1
  local v = {}
  for cell in line:gmatch("[^,]+") do v[#v + 1] = tonumber(cell) end
  local function expect(ok, what)
    if not ok then error(("%s: row %d '%s': %s"):format(path, rows, line, what), 0) end
  end
  expect(#v == 7, "not 7 numbers")
  expect(v[1] == scales[rows], "scale is not " .. tostring(scales[rows]))
  expect(v[2] >= 0 and v[2] <= 1, "acceptance_rate not in [0, 1]")
  expect(v[3] >= 1, "mean_accepted_length below 1")
  expect(v[4] > 0 and v[5] > 0, "tokens_per_s or speedup not positive")
  expect((v[1] == 0) == (v[6] == 0 and v[7] == 0), "the update's size does not follow the scale")
  expect(v[7] >= v[6], "max_rel below mean_rel")
end
f:close()
if rows ~= 2 then error(("%s: %d rows, want 2"):format(path, rows), 0) end
print(("%s: 2 rows, header and values plausible"):format(path))
