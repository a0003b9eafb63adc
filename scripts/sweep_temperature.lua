-- sweep_temperature.lua: how sampling temperature changes speculative decoding at a fixed k:
-- acceptance (averaged over seeds), tokens per target step, speed, and speedup over plain decoding
-- at the same temperature.
--
-- usage: specscope run scripts/sweep_temperature.lua [--out temperature.csv] [--k 4]
--            [--temperatures 0,0.3,0.6,0.9,1.2] [--seeds 3] [--model DIR --draft DIR] [-n 64]
--            [--prompt TEXT] [--repeats 3] [--backend auto|cpu|cuda]
-- The CSV (replaced) has the columns temperature, acceptance_rate, mean_accepted_length,
-- tokens_per_s, speedup.
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/bench.lua")
local opt = bench.options{out = "temperature.csv", k = 4, temperatures = "0,0.3,0.6,0.9,1.2", seeds = 3}
local s = bench.open(opt)

local temperatures = {}
for t in opt.temperatures:gmatch("[^,]+") do
  temperatures[#temperatures + 1] = tonumber(t) or error("--temperatures: '" .. t .. "' is not a number", 0)
end

local columns = {"temperature", "acceptance_rate", "mean_accepted_length", "tokens_per_s", "speedup"}
bench.start(opt.out, columns)
for _, t in ipairs(temperatures) do
  -- acceptance varies with the random draws: average it over seeds; time the first seed
  local proposed, accepted, steps, emitted = 0, 0, 0, 0
  local rate, plain_rate
  for seed = opt.seed, opt.seed + opt.seeds - 1 do
    local r, seed_rate = bench.measure(s, opt, {k = opt.k, temperature = t, seed = seed})
    local d = r.stats.draft
    proposed, accepted = proposed + d.proposed, accepted + d.accepted
    steps, emitted = steps + r.stats.steps, emitted + r.stats.generated - 1
    if not rate then
      rate = seed_rate
      plain_rate = select(2, bench.measure(s, opt, {k = 0, temperature = t, seed = seed}))
    end
  end
  bench.row(opt.out, columns, {
    temperature = t,
    acceptance_rate = accepted / proposed,
    mean_accepted_length = emitted / steps,
    tokens_per_s = rate,
    speedup = rate / plain_rate,
  })
end
s:close()
print("# wrote " .. opt.out)
