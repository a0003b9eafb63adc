-- sweep_lora_scale.lua: a PEFT LoRA adapter on the target at a list of scales: what it does to
-- speculative decoding (the draft knows nothing of the adapter, so acceptance measures how far the
-- adapted target moved from the draft), to speed, and how large its update is (|s*BA| / |W0|).
--
-- usage: specscope run scripts/sweep_lora_scale.lua --adapter DIR [--scales 0,0.25,0.5,1]
--            [--out lora.csv] [--merge] [--model DIR --draft DIR|ngram] [-n 64] [--k 4]
--            [--prompt TEXT] [--repeats 3] [--backend auto|cpu|cuda]
-- --merge folds the adapter into the weights at each scale (no cost per token; docs/lora.md). The
-- CSV (replaced) has the columns scale, acceptance_rate, mean_accepted_length, tokens_per_s,
-- speedup (over plain decoding with the adapter at that scale), mean_rel, max_rel.
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/bench.lua")
local opt = bench.options{out = "lora.csv", adapter = "", scales = "0,0.25,0.5,1", k = 4, merge = false}
if opt.adapter == "" then error("give --adapter DIR (a PEFT LoRA adapter folder)", 0) end
local scales = {}
for item in tostring(opt.scales):gmatch("[^,]+") do
  scales[#scales + 1] = tonumber(item) or error(("--scales: '%s' is not a number"):format(item), 0)
end
local s = bench.open(opt)
local name = s:lora_load(opt.adapter)
if opt.merge then s:lora_merge(true) end

local columns = {"scale", "acceptance_rate", "mean_accepted_length", "tokens_per_s", "speedup", "mean_rel", "max_rel"}
bench.start(opt.out, columns)
for _, scale in ipairs(scales) do
  s:lora_scale(name, scale)
  local _, plain_rate = bench.measure(s, opt, {k = 0})
  local r, rate = bench.measure(s, opt, {k = opt.k})
  local sum, max, rows = 0, 0, s:lora_norms(name)
  for _, row in ipairs(rows) do sum, max = sum + row.rel, math.max(max, row.rel) end
  bench.row(opt.out, columns, {
    scale = scale,
    acceptance_rate = r.stats.draft.acceptance_rate,
    mean_accepted_length = r.stats.draft.mean_accepted_length,
    tokens_per_s = rate,
    speedup = rate / plain_rate,
    mean_rel = sum / #rows,
    max_rel = max,
  })
end
s:close()
print("# wrote " .. opt.out)
