-- chat_template_tokens.lua MODEL: a greedy chat generation of at most 12 tokens whose prompt the
-- script's spec.chat_template renders (a fixed text), printed as space-separated token ids.
-- tests/chat_template_stop.sh runs it on a model and on a copy whose tokenizer names one of the
-- emitted tokens as the chat format's end-of-turn token.
local s = spec.open{model = spec.args[1], backend = "cpu"}
spec.chat_template = function(messages)
  assert(#messages == 1 and messages[1].role == "user" and messages[1].content == "ignored")
  return "Once upon a time there was a"
end
local r = s:generate("ignored", {chat = true, max_tokens = 12, temperature = 0})
print(table.concat(r.tokens, " "))
