-- sweep_k.lua: speculative decoding for k = 1..8 draft tokens per round: acceptance, tokens per
-- target step, speed, and speedup over plain decoding measured in the same run.
--
-- usage: specscope run scripts/sweep_k.lua [--out k.csv] [--model DIR --draft DIR|ngram] [-n 64]
--            [--prompt TEXT] [--kmax 8] [--temperature 0] [--easyspec G] [--repeats 3]
--            [--backend auto|cpu|cuda]
-- --easyspec G drafts with EasySpec groups of G layers (0: the exact draft). The CSV (replaced) has
-- the columns k, easyspec, acceptance_rate, mean_accepted_length, tokens_per_s, speedup.
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/bench.lua")
local opt = bench.options{out = "k.csv", kmax = 8, temperature = 0.0, easyspec = 0}
local s = bench.open(opt)
s:set{temperature = opt.temperature}

local _, plain_rate = bench.measure(s, opt, {k = 0})
print(("# plain decoding: %.1f tokens/s"):format(plain_rate))

local columns = {"k", "easyspec", "acceptance_rate", "mean_accepted_length", "tokens_per_s", "speedup"}
bench.start(opt.out, columns)
for k = 1, opt.kmax do
  local r, rate = bench.measure(s, opt, {k = k, easyspec = opt.easyspec})
  local draft = r.stats.draft
  bench.row(opt.out, columns, {
    k = k,
    easyspec = opt.easyspec,
    acceptance_rate = draft.acceptance_rate,
    mean_accepted_length = draft.mean_accepted_length,
    tokens_per_s = rate,
    speedup = rate / plain_rate,
  })
end
s:close()
print("# wrote " .. opt.out)
