-- fail_syntax.lua: does not compile (line 3).
local x = 1
local y = = 2
