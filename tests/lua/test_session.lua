-- test_session.lua: sessions from Lua on the demo pair. test_lua runs it with the target and draft
-- folders as arguments and an interface session as spec.current.
local T = dofile((arg[0]:match("^(.*/)") or "./") .. "testlib.lua")
local target_dir, draft_dir = spec.args[1], spec.args[2]
local prompt = "The Linux kernel"

-- spec.open with no model: the demo pair ----------------------------------------------------------
local s = spec.open{backend = "cpu"}
local info = s:info()
T.eq(info.draft, "model", "the demo pair has a draft model")
T.eq(info.backend, "cpu", "backend")
T.eq(info.layers, 8, "target layers")
T.eq(info.draft_layers, 4, "draft layers")
T.check(tostring(s):find("spec.session (cpu, draft: model)", 1, true), "tostring: " .. tostring(s))

-- s:set and s:params --------------------------------------------------------------------------------
s:set{k = 4, temperature = 0.0, top_k = 0, top_p = 1.0, seed = 1, easyspec = 0, max_tokens = 24}
local p = s:params()
T.eq(p.k, 4, "k")
T.eq(p.max_tokens, 24, "max_tokens")
T.eq(p.easyspec_mode, "attn", "easyspec_mode default")
s:set{min_p = 0.0, repeat_penalty = 1.0, easyspec_mode = "layer", groups = "", chat = false, adaptive = 0,
      stop_at_eos = true}
T.eq(s:params().easyspec_mode, "layer", "easyspec_mode set")
s:set{easyspec_mode = "attn"}
T.raises("spec: set: unknown option 'temp'", s.set, s, {temp = 1})
T.raises("spec: set: k must be an integer in [0, 16] (got 17)", s.set, s, {k = 17})
T.raises("spec: set: k must be an integer in [0, 16] (got 3)", s.set, s, {k = "3"})
T.raises("spec: set: k must be an integer in [0, 16] (got 2.5)", s.set, s, {k = 2.5})
T.raises("spec: set: temperature must be a number in [0, 100] (got -1)", s.set, s, {temperature = -1})
T.raises("spec: set: top_p must be a number in [0, 1] (got ", s.set, s, {top_p = 0 / 0})
T.raises("spec: set: easyspec_mode must be \"attn\" or \"layer\" (got \"both\")", s.set, s, {easyspec_mode = "both"})
T.raises("spec: set: groups is longer than 127 characters", s.set, s, {groups = string.rep("0", 200)})
T.raises("spec: set: chat must be true or false (got yes)", s.set, s, {chat = "yes"})
T.raises("spec: set: option names are strings (got 1)", s.set, s, {5})
T.raises("bad argument #1 to 'set' (table expected, got no value)", function() s:set() end)
T.raises("bad argument #1 to 'set' (spec.session expected, got table)", function() s.set({}, {}) end)
T.raises("unknown option 'bogus'", s.set, s, {k = 2, bogus = 1})
T.eq(s:params().k, 4, "a failed set changes nothing")

-- s:generate: the result, as generate --json ------------------------------------------------------
local r = s:generate(prompt)
T.eq(type(r.text), "string", "r.text")
T.check(#r.tokens >= 1 and #r.tokens <= 24, "#r.tokens " .. #r.tokens)
T.eq(#r.sources, #r.tokens, "one source per token")
for i, src in ipairs(r.sources) do T.check(src == "d" or src == "t", "source " .. i .. " " .. src) end
T.eq(r.sources[1], "t", "the first token comes from the target")
T.eq(r.stopped, false, "not stopped")
T.check(r.prompt_tokens > 0, "prompt_tokens")
local st = r.stats
T.eq(st.generated, #r.tokens, "stats.generated")
T.check(st.steps >= 1 and st.steps <= st.generated, "stats.steps " .. st.steps)
T.check(st.tokens_per_s > 0, "tokens_per_s")
local d = st.draft
T.eq(d.k, 4, "draft.k")
T.check(d.proposed > 0 and d.accepted >= 0 and d.accepted <= d.proposed, "proposed / accepted")
T.eq(d.acceptance_rate, d.accepted / d.proposed, "acceptance_rate")
T.eq(d.mean_accepted_length, (st.generated - 1) / st.steps, "mean_accepted_length")
T.eq(#d.per_position, 4, "per_position")
T.eq(#d.per_position_proposed, 4, "per_position_proposed")
T.eq(d.per_position_proposed[1], st.steps, "every round proposes position 1")
for _, key in ipairs{"prefill", "draft", "verify", "calibrate", "total"} do
  T.eq(type(st.time_ms[key]), "number", "time_ms." .. key)
end
T.check(st.time_ms.verify > 0 and st.time_ms.draft > 0, "verify and draft times")
T.check(spec.json(r):find('"acceptance_rate":', 1, true), "the result converts to JSON")

-- greedy speculative decoding emits exactly the target's greedy tokens
local plain = s:generate(prompt, {k = 0})
T.eq(plain.stats.draft, nil, "no draft stats with k = 0")
T.eq(table.concat(plain.tokens, " "), table.concat(r.tokens, " "), "speculative == plain under greedy")
T.eq(s:params().k, 4, "per-call options do not stick")
local again = s:generate(prompt)
T.eq(table.concat(again.tokens, " "), table.concat(r.tokens, " "), "deterministic")

-- a prompt of token ids
local by_ids = s:generate({0, 464, 1000}, {max_tokens = 5})
T.check(#by_ids.tokens >= 1 and #by_ids.tokens <= 5, "ids prompt")
T.eq(by_ids.prompt_tokens, 3, "ids prompt length")
T.raises("spec: generate: prompt[2] is not a token id (got x)", s.generate, s, {1, "x"})
T.raises("spec: generate: prompt[1] is not a token id (got -1)", s.generate, s, {-1})
T.raises("outside the vocabulary", s.generate, s, {1, 100000})
T.raises("bad argument #1 to 'generate' (a prompt string or a table of token ids expected)",
         function() s:generate(5) end)
T.raises("spec: generate: unknown option 'kk'", s.generate, s, prompt, {kk = 1})
local none = s:generate(prompt, {max_tokens = 0})
T.eq(#none.tokens, 0, "max_tokens = 0 generates nothing")
T.eq(spec.json(none.tokens), "[]", "an empty token list")

-- callbacks -----------------------------------------------------------------------------------------
local pieces, ids, sources, steps = {}, {}, {}, {}
s:on_token(function(piece, id, source)
  pieces[#pieces + 1] = piece
  ids[#ids + 1] = id
  sources[#sources + 1] = source
end)
s:on_step(function(step) steps[#steps + 1] = step end)
r = s:generate(prompt)
T.eq(table.concat(ids, " "), table.concat(r.tokens, " "), "on_token ids")
T.eq(table.concat(sources), table.concat(r.sources), "on_token sources")
local streamed = table.concat(pieces)
T.eq(r.text:sub(1, #streamed), streamed, "the pieces spell the text")
T.eq(#steps, r.stats.steps, "one on_step per step")
local proposed, accepted, emitted = 0, 0, 0
for _, step in ipairs(steps) do
  proposed, accepted, emitted = proposed + step.proposed, accepted + step.accepted, emitted + step.emitted
  T.eq(#step.outcome, step.proposed, "outcome length")
  local trues = 0
  for i, ok in ipairs(step.outcome) do
    if ok then trues = trues + 1 end
    T.eq(ok, i <= step.accepted, "accepted drafts come first")
  end
  T.eq(trues, step.accepted, "outcome count")
  T.check(step.time_ms.draft >= 0 and step.time_ms.verify > 0 and step.time_ms.calibrate >= 0, "step times")
end
T.eq(proposed, r.stats.draft.proposed, "steps' proposed")
T.eq(accepted, r.stats.draft.accepted, "steps' accepted")
T.eq(emitted, r.stats.generated - 1, "steps' emitted (the first token comes from prefill)")

-- returning false stops the generation: the result comes back marked stopped
s:on_step(nil)
s:on_token(function() return false end)
r = s:generate(prompt)
T.eq(r.stopped, true, "stopped by a callback")
T.eq(#r.tokens, 1, "stopped after the first token")

-- an error in a callback ends generate with that error; the session stays usable
s:on_token(function(piece, id) if id >= 0 then error("boom in on_token") end end)
T.raises("boom in on_token", s.generate, s, prompt)
s:on_token(nil)
s:on_step(function() local x = nil; return x.field end)
T.raises("attempt to index a nil value", s.generate, s, prompt)
s:on_step(nil)
-- callbacks may not generate, reset or close their own session
for name, call in pairs{generate = function() s:generate("x") end, reset = function() s:reset() end,
                        close = function() s:close() end} do
  s:on_token(call)
  T.raises("the session is generating (called from one of its callbacks)", s.generate, s, prompt)
  T.check(tostring(s) ~= "spec.session (closed)", name .. " from a callback left the session open")
end
s:on_token(nil)
T.raises("bad argument #1 to 'on_token' (function expected, got number)", function() s:on_token(3) end)
T.eq(#s:generate(prompt).tokens, #again.tokens, "usable after callback errors")

-- EasySpec groups: the draft runs its layers in groups, then calibrates
local es = s:generate(prompt, {easyspec = 2})
T.check(es.stats.time_ms.calibrate > 0, "EasySpec calibrates")
T.check(es.stats.draft.acceptance_rate > 0 and es.stats.draft.acceptance_rate <= 1, "EasySpec acceptance")
T.eq(#s:generate(prompt, {groups = "0-1,2-3", easyspec_mode = "layer"}).sources, #es.sources, "explicit groups")
T.raises("spec: generate: EasySpec groups", s.generate, s, prompt, {groups = "0-9"})

-- spec.chat_template: the script renders the conversation ----------------------------------------
local seen = {}
spec.chat_template = function(messages)
  local out, snapshot = {}, {}
  for i, m in ipairs(messages) do
    out[#out + 1] = m.role .. ": " .. m.content
    snapshot[i] = {role = m.role, content = m.content}
  end
  seen[#seen + 1] = snapshot
  messages[1].content = "edited" -- a copy: the session's history stays as it was
  return table.concat(out, "\n") .. "\nassistant:"
end
local c1 = s:generate("hello", {chat = true, max_tokens = 6})
T.eq(#seen[1], 1, "first turn: one message")
T.eq(seen[1][1].role, "user", "role")
local c2 = s:generate("and then?", {chat = true, max_tokens = 6})
T.eq(#seen[2], 3, "second turn: user, assistant, user")
T.eq(seen[2][1].content, "hello", "history is a copy")
T.eq(seen[2][2].role, "assistant", "assistant turn")
T.eq(seen[2][2].content, c1.text, "assistant turn holds the reply")
T.eq(seen[2][3].content, "and then?", "new user turn")
T.check(#c2.tokens >= 1, "chat reply")
s:generate("plain", {max_tokens = 2}) -- chat = false: the template is not used
T.eq(#seen, 2, "no template without chat")
s:reset()
s:generate("again", {chat = true, max_tokens = 2})
T.eq(#seen[3], 1, "reset forgets the conversation")
spec.chat_template = function() return 42 end
T.raises("spec: chat_template must return a string (got number)", s.generate, s, "x", {chat = true})
spec.chat_template = nil
T.check(#s:generate("hello", {chat = true, max_tokens = 4}).tokens >= 1, "the model's own chat format")
s:reset()

-- LoRA (the methods: test_lora.lua; s:trace and s:trace_save: test_trace.lua) ----------------------
T.raises("spec: lora_load: dir/adapter_config.json: not found", s.lora_load, s, "dir", {name = "a"})
T.raises("spec: lora_scale: no adapter named 'a' is loaded", s.lora_scale, s, "a", 0.5)
T.raises("spec: lora_enable: no adapter named 'a' is loaded", s.lora_enable, s, "a", false)
T.eq(#s:lora_norms(), 0, "no adapter: no norm rows")

-- close, __close, __gc ------------------------------------------------------------------------------
s:close()
T.eq(tostring(s), "spec.session (closed)", "closed")
for _, method in ipairs{"set", "params", "info", "generate", "reset", "on_token", "on_step", "lora_load", "trace"} do
  T.raises("spec: session is closed", s[method], s, {})
end
s:close() -- closing twice is harmless
local kept
do
  local scoped <close> = spec.open{model = target_dir}
  kept = scoped
  T.eq(scoped:info().draft, "none", "a model without a draft")
  local rr = scoped:generate(prompt, {max_tokens = 4})
  T.eq(rr.stats.draft, nil, "no draft stats without a draft")
end
T.eq(tostring(kept), "spec.session (closed)", "<close> closed it")
spec.open{model = target_dir, draft = false}
collectgarbage() -- the unreferenced session is closed by __gc

-- prompt lookup drafting, and a draft given by folder --------------------------------------------
local ng = spec.open{model = target_dir, draft = "ngram"}
T.eq(ng:info().draft, "ngram", "ngram draft")
local rng = ng:generate("one two three one two three one two", {max_tokens = 8})
T.eq(rng.stats.draft.k, 4, "ngram draft stats")
ng:close()
local explicit = spec.open{model = target_dir, draft = draft_dir, max_context = 256}
T.eq(explicit:info().max_context, 256, "max_context")
explicit:close()
T.raises("spec: open: ", spec.open, {model = target_dir, draft = target_dir .. "/missing"})

-- spec.current: the interface's session -----------------------------------------------------------
T.check(spec.current ~= nil, "spec.current")
local cr = spec.current:generate(prompt, {max_tokens = 3})
T.check(#cr.tokens >= 1, "generate on spec.current")
spec.current:close() -- forgets it; the interface's session lives on
T.raises("spec: session is closed", spec.current.generate, spec.current, prompt)

T.done()
