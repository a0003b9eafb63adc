-- test_lora.lua: the spec module's LoRA methods on a test checkpoint and its PEFT adapter
-- (tests/fixtures/lora, scripts/make_lora_fixtures.py):
--   specscope run tests/lua/test_lora.lua PATH/TO/tests/fixtures
local T = dofile((arg[0]:match("^(.*/)") or "./") .. "testlib.lua")
local fixtures = spec.args[1] or error("usage: specscope run test_lora.lua PATH/TO/tests/fixtures", 0)
local adapter, model = fixtures .. "/lora/llama-all", fixtures .. "/llama-f32"

-- The reference's first norm row, read from its text (indent=1 JSON, keys in a known order).
local ref = T.read(adapter .. "/reference.json")
local first = ref:match('"norms": %[%s*(%b{})')
local want = {}
for key, value in first:gmatch('"(%a+)": ([%-%d%.eE]+)') do want[key] = tonumber(value) end

local s = spec.open{model = model, draft = "none", backend = "cpu"}
s:set{k = 0, temperature = 0, max_tokens = 8}
local prompt = {283, 204, 172, 99, 252}
local plain = table.concat(s:generate(prompt).tokens, " ")
T.eq(#s:lora_norms(), 0, "no adapter: no norm rows")

T.eq(s:lora_load(adapter), "llama-all", "the default name is the folder's")
local rows = s:lora_norms()
T.eq(#rows, 14, "a row per layer and module")
T.eq(rows[1].adapter, "llama-all", "adapter")
T.eq(rows[1].layer, want.layer, "layer")
T.eq(rows[1].module, "q_proj", "module")
for _, key in ipairs{"a", "b", "ba", "rel"} do
  T.check(math.abs(rows[1][key] - want[key]) <= 1e-9 * math.abs(want[key]), key .. ": " .. rows[1][key] .. " vs " .. want[key])
end
T.eq(rows[14].module, "down_proj", "the last row")
local with = table.concat(s:generate(prompt).tokens, " ")
T.check(with ~= plain, "the adapter changes the tokens: " .. with)

s:lora_scale("llama-all", 0.5)
T.check(math.abs(s:lora_norms()[1].ba - rows[1].ba / 2) <= 1e-12 * rows[1].ba, "the scale halves |s*BA|")
T.check(s:lora_norms()[1].a == rows[1].a, "|A| does not depend on the scale")
s:lora_scale("llama-all", 1)
s:lora_enable("llama-all", false)
T.eq(table.concat(s:generate(prompt).tokens, " "), plain, "switched off: the base model's tokens")
s:lora_enable("llama-all", true)
T.eq(table.concat(s:generate(prompt).tokens, " "), with, "on again")
s:lora_merge(true)
T.eq(table.concat(s:generate(prompt).tokens, " "), with, "merged: the same tokens")
s:lora_merge(false)
T.raises("boolean expected, got string", s.lora_merge, s, "yes")

T.eq(s:lora_load(adapter, {name = "half", scale = 0.5}), "half", "a name of one's own")
T.eq(#s:lora_norms(), 28, "both adapters' rows")
T.eq(#s:lora_norms("half"), 14, "one adapter's rows")
T.eq(s:lora_norms("half")[1].adapter, "half", "named rows")
T.raises("spec: lora_load: an adapter named 'half' is loaded already", s.lora_load, s, adapter, {name = "half"})
T.raises("spec: lora_load: an adapter named 'llama-all' is loaded already (give {name = ...})", s.lora_load, s, adapter)
T.raises("spec: lora_scale: no adapter named 'x' is loaded", s.lora_scale, s, "x", 1)
T.raises("spec: lora_enable: no adapter named 'x' is loaded", s.lora_enable, s, "x", true)
T.raises("spec: lora_load: scale must be a finite number (got inf)", s.lora_load, s, adapter, {name = "n", scale = math.huge})
T.raises("adapter_config.json: not found", s.lora_load, s, fixtures .. "/none")
T.raises("expected [96, 2] (out, r)", spec.open{model = fixtures .. "/qwen3-bf16", draft = "none", backend = "cpu"}.lora_load,
         spec.open{model = fixtures .. "/qwen3-bf16", draft = "none", backend = "cpu"}, fixtures .. "/lora/llama3rope-mlp")
s:lora_unload("half")
s:lora_unload("llama-all")
T.eq(#s:lora_norms(), 0, "unloaded")
T.eq(table.concat(s:generate(prompt).tokens, " "), plain, "unloaded: the base model's tokens")
s:close()
T.raises("spec: session is closed", s.lora_norms, s)
T.done()
