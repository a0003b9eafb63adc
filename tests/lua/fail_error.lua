-- fail_error.lua: a runtime error two calls deep; test_lua and test_cli.lua check the file:line of
-- each level in the message and its traceback.
local function inner()
  error("the table has no field 'missing'")
end
local function middle()
  local x = 1
  inner()
  return x
end
middle()
