-- contract_example.lua: a script written only from the API listed in the Lua issue (the contract
-- scripts outside the repository rely on), run unchanged on the demo pair by `specscope run`.
local s = spec.open{model = nil, draft = nil, backend = "auto"}
s:set{k = 4, temperature = 0.0, top_k = 0, top_p = 1.0, seed = 1, easyspec = 0, max_tokens = 64}
local tokens, steps = 0, 0
s:on_token(function(piece, id, source) tokens = tokens + 1 end)
s:on_step(function(step) steps = steps + 1 end)
local r = s:generate("Once upon a time", {max_tokens = 16})
assert(type(r.text) == "string" and #r.tokens == tokens and #r.sources == tokens)
assert(r.stats.generated == tokens and r.stats.steps == steps)
assert(r.stats.draft.k == 4 and r.stats.draft.acceptance_rate >= 0 and r.stats.time_ms.prefill >= 0)
s:reset()
for _, call in ipairs{function() s:lora_load("adapter", {name = "a", scale = 1.0}) end,
                      function() s:lora_scale("a", 0.5) end, function() s:lora_enable("a", false) end} do
  local ok, err = pcall(call) -- no folder "adapter" here, so no adapter "a"
  assert(not ok and (err:find("adapter_config.json", 1, true) or err:find("no adapter named 'a'", 1, true)), err)
end
assert(#s:lora_norms() == 0)
local frame = s:trace()
assert(frame.step == steps and #frame.phases >= 1 and frame.wall_ms >= 0)
local trace_file = os.tmpname()
assert(s:trace_save(trace_file) >= 3 * steps)
os.remove(trace_file)
local out = os.tmpname()
os.remove(out)
spec.csv(out, {{k = 4, rate = 0.25}})
spec.csv(out, {{k = 5, rate = 0.5}}, {"k", "rate"})
local text = spec.json({args = spec.args, stats = r.stats})
assert(text:find('"generated":' .. tokens, 1, true))
spec.chat_template = function(messages) return messages[#messages].content end
local c = s:generate("Hello", {chat = true, max_tokens = 4})
assert(#c.tokens >= 1)
s:close()
assert(not pcall(s.generate, s, "x"))
local f = assert(io.open(out))
assert(f:read("a") == "k,rate\n4,0.25\n5,0.5\n")
f:close()
os.remove(out)
print("contract example: ok")
