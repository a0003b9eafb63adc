-- bench.lua: what the experiment scripts in scripts/ share: the model options, opening the session,
-- timed generations (median tokens/s over repeats) and result rows (CSV on disk, a line on stdout).
-- Loaded with dofile from the script's own folder; it uses only the documented `spec` API.
local bench = {}

-- Options every experiment takes (scripts add their own).
local common = {
  model = "",     -- target folder; empty: the bundled demo pair
  draft = "",     -- draft folder or "ngram"; empty with no --model: the demo draft
  backend = "auto",
  prompt = "To configure the network interface, edit",
  n = 64,         -- tokens per generation (EOS does not end it early)
  repeats = 3,    -- timed generations per setting; tokens/s is their median
  seed = 1,
}

function bench.options(defaults)
  local all = {}
  for key, value in pairs(common) do all[key] = value end
  for key, value in pairs(defaults) do all[key] = value end
  local opt = spec.parse_args(all)
  if opt.n < 2 then error("-n must be at least 2", 0) end
  if opt.repeats < 1 then error("--repeats must be at least 1", 0) end
  return opt
end

-- The session, warmed up: both models' weights paged in before anything is timed.
function bench.open(opt)
  local s
  if opt.model == "" then
    s = spec.open{backend = opt.backend, draft = opt.draft ~= "" and opt.draft or nil}
  elseif opt.draft == "" then
    error("give --draft DIR (or --draft ngram) with --model", 0)
  else
    s = spec.open{model = opt.model, draft = opt.draft, backend = opt.backend}
  end
  s:set{max_tokens = opt.n, stop_at_eos = false, seed = opt.seed}
  s:generate(opt.prompt, {k = 0})
  s:generate(opt.prompt, {k = 4})
  local info = s:info()
  print(("# %s backend, draft: %s, %d tokens per run, median of %d runs"):format(info.backend, info.draft, opt.n,
                                                                               opt.repeats))
  return s
end

-- Generates opt.repeats times with params; returns the last result and the median tokens/s.
function bench.measure(s, opt, params)
  local rates, r = {}, nil
  for i = 1, opt.repeats do
    r = s:generate(opt.prompt, params)
    rates[i] = r.stats.tokens_per_s
  end
  table.sort(rates)
  return r, rates[(#rates + 1) // 2]
end

-- Starts the result file afresh and prints the column names.
function bench.start(path, columns)
  os.remove(path)
  print(table.concat(columns, "\t"))
end

-- Appends one row to the CSV (flushed at once) and prints it.
function bench.row(path, columns, row)
  spec.csv(path, {row}, columns)
  local cells = {}
  for i, name in ipairs(columns) do
    local v = row[name]
    cells[i] = math.type(v) == "float" and ("%.3f"):format(v) or tostring(v)
  end
  print(table.concat(cells, "\t"))
end

return bench
