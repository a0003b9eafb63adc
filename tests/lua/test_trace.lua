-- test_trace.lua: s:trace() and s:trace_save() on the demo pair (CPU). test_lua runs it with the
-- trace file to write as spec.args[1] and a folder as spec.args[2], with a tracer of its own active
-- (the interface's, in effect), then parses the file and checks that its own tracer saw nothing.
local T = dofile((arg[0]:match("^(.*/)") or "./") .. "testlib.lua")
local trace_path, folder = spec.args[1], spec.args[2]
local prompt = "The Linux kernel"

-- A step's table: phases in the expected order, models as spec.c records them, times consistent.
local function check_step(tr, want, what)
  T.eq(type(tr), "table", what .. ": a step")
  if type(tr) ~= "table" then return end
  T.eq(#tr.phases, #want, what .. ": phases")
  local prev_start = 0
  for i, p in ipairs(tr.phases) do
    local w = want[i] or {}
    T.eq(p.phase .. "/" .. p.model, tostring(w[1]) .. "/" .. tostring(w[2]), what .. ": phase " .. i)
    T.check(p.ms >= 0, what .. ": ms >= 0")
    T.check(p.start_ms >= prev_start, what .. ": start_ms ordered")
    T.check(p.start_ms + p.ms <= tr.wall_ms + 1e-6, what .. ": inside the step's wall time")
    prev_start = p.start_ms
  end
  T.eq(tr.phases[1] and tr.phases[1].start_ms, 0, what .. ": the first phase starts the step")
end

local function phase(tr, name)
  for _, p in ipairs(tr.phases) do if p.phase == name then return p end end
end

-- Before any generation: nothing traced ---------------------------------------------------------
local s = spec.open{backend = "cpu"}
T.eq(s:trace(), nil, "no step before any generation")

-- k 4 with the demo draft: the last step is a round (draft, verify, calibrate) --------------------
s:set{k = 4, temperature = 0.0, seed = 1, max_tokens = 24}
local rounds, in_callback, last_step = 0, {}, nil
s:on_step(function(step)
  rounds = rounds + 1
  local tr = s:trace() -- mid-generation: the round that just ended
  in_callback[#in_callback + 1] = tr and tr.step or -1
  last_step = step
end)
local r = s:generate(prompt)
s:on_step(nil)
T.check(r.stats.steps >= 2, "more than one round: " .. r.stats.steps)
for i, n in ipairs(in_callback) do T.eq(n, i, "s:trace() in on_step " .. i .. ": that round") end
local tr = s:trace()
check_step(tr, {{"draft", "draft"}, {"verify", "target"}, {"calibrate", "draft"}}, "k 4")
T.eq(tr.step, r.stats.steps, "the last step's number")
-- the spans time the same code as the step's own clock (ss_step.ms_*), a few microseconds apart
T.check(math.abs(phase(tr, "verify").ms - last_step.time_ms.verify) < 0.5,
        ("verify %.3f ms, on_step said %.3f"):format(phase(tr, "verify").ms, last_step.time_ms.verify))
T.check(math.abs(phase(tr, "draft").ms - last_step.time_ms.draft) < 0.5, "draft ms as on_step's")
-- the session's whole trace: both prefills, then draft, verify, calibrate per round, and on the CPU
-- a span per layer of every forward inside them (test_lua.c counts the phase spans exactly)
local events = s:trace_save(trace_path)
T.check(events > 2 + 3 * r.stats.steps, ("events written: %d, more than %d"):format(events, 2 + 3 * r.stats.steps))

-- One round: the first step takes the prefill spans with it --------------------------------------
local s1 = s:generate(prompt, {max_tokens = 2})
T.eq(s1.stats.steps, 1, "max_tokens 2: one round")
check_step(s:trace(), {{"prefill", "target"}, {"prefill", "draft"}, {"draft", "draft"}, {"verify", "target"},
                       {"calibrate", "draft"}}, "first step")
T.eq(s:trace().step, 1, "the first step's number")

-- k 0: spec.c still opens the draft and calibrate spans, empty; the draft is not prefilled --------
local p = spec.open{backend = "cpu"}
local r0 = p:generate(prompt, {k = 0, temperature = 0.0, max_tokens = 2})
check_step(p:trace(), {{"prefill", "target"}, {"draft", "draft"}, {"verify", "target"}, {"calibrate", "draft"}},
           "k 0, first step")
r0 = p:generate(prompt, {k = 0, temperature = 0.0, max_tokens = 8})
local t0 = p:trace()
check_step(t0, {{"draft", "draft"}, {"verify", "target"}, {"calibrate", "draft"}}, "k 0")
T.eq(t0.step, r0.stats.steps, "k 0: the last step's number")
T.check(phase(t0, "draft").ms < phase(t0, "verify").ms and phase(t0, "calibrate").ms < phase(t0, "verify").ms,
        "k 0: only verify does work")

-- A session generating inside another's callback traces into its own tracer ----------------------
local outer_events = p:trace_save(trace_path .. ".p") -- (a fresh count for p below)
local nested_steps
s:on_step(function()
  if not nested_steps then nested_steps = p:generate("x", {k = 0, max_tokens = 3}).stats.steps end
end)
local r2 = s:generate(prompt)
s:on_step(nil)
T.eq(p:trace().step, nested_steps, "the nested generation's last step")
T.check(p:trace_save(trace_path .. ".p") > outer_events + 1 + 3 * nested_steps, "the nested session's events")
T.eq(s:trace().step, r2.stats.steps, "the outer session's last step after the nested one")

-- spec.current (the interface's session) has a tracer of its own too ------------------------------
if spec.current then
  T.eq(spec.current:trace(), nil, "spec.current before a generation")
  local rc = spec.current:generate(prompt, {max_tokens = 4})
  T.eq(spec.current:trace().step, rc.stats.steps, "spec.current's last step")
end

-- trace_save errors: one line naming the path -------------------------------------------------------
T.raises("spec: trace_save: trace: cannot write '/nonexistent-folder/t.json'", s.trace_save, s,
         "/nonexistent-folder/t.json")
T.raises("spec: trace_save: trace: cannot write '" .. folder .. "': it is a folder", s.trace_save, s, folder)
T.raises("bad argument #1 to 'trace_save' (string expected, got no value)", function() s:trace_save() end)
s:close()
T.raises("spec: session is closed", s.trace, s)
T.raises("spec: session is closed", s.trace_save, s, trace_path)
p:close()
T.done()
