-- easyspec_groups.lua: EasySpec layer-parallel drafting with groups of G = 1, 2, 4 draft layers
-- (G = 1: the exact draft model). Per G: drafting time per round and its speedup over G = 1,
-- calibration time, acceptance and its relative drop from G = 1, and end-to-end speedup over
-- plain decoding.
--
-- usage: specscope run scripts/easyspec_groups.lua [--out easyspec.csv] [--sizes 1,2,4]
--            [--mode attn|layer] [--k 4] [--model DIR --draft DIR] [-n 64] [--prompt TEXT]
--            [--repeats 3] [--backend auto|cpu|cuda]
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/bench.lua")
local opt = bench.options{out = "easyspec.csv", sizes = "1,2,4", mode = "attn", k = 4}
local s = bench.open(opt)

local _, plain_rate = bench.measure(s, opt, {k = 0})
print(("# plain decoding: %.1f tokens/s"):format(plain_rate))

local columns = {"G", "mode", "draft_ms_per_round", "draft_speedup", "calibrate_ms_per_round", "acceptance_rate",
                 "acceptance_drop", "tokens_per_s", "speedup"}
bench.start(opt.out, columns)
local base -- the G = 1 row (the first size)
for size in opt.sizes:gmatch("[^,]+") do
  local G = math.tointeger(tonumber(size)) or error("--sizes: '" .. size .. "' is not an integer", 0)
  local r, rate = bench.measure(s, opt, {k = opt.k, easyspec = G, easyspec_mode = opt.mode})
  local st = r.stats
  local row = {
    G = G,
    mode = opt.mode,
    draft_ms_per_round = st.time_ms.draft / st.steps,
    calibrate_ms_per_round = st.time_ms.calibrate / st.steps,
    acceptance_rate = st.draft.acceptance_rate,
    tokens_per_s = rate,
    speedup = rate / plain_rate,
  }
  base = base or row
  row.draft_speedup = base.draft_ms_per_round / row.draft_ms_per_round
  row.acceptance_drop = (base.acceptance_rate - row.acceptance_rate) / base.acceptance_rate
  bench.row(opt.out, columns, row)
end
s:close()
print("# wrote " .. opt.out)
