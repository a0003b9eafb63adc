-- testlib.lua: the assertions of the Lua tests. A failed check prints its line and the script
-- goes on; T.done() prints the counts and raises when anything failed.
local T = {passed = 0, failed = 0}

local function fail(what)
  T.failed = T.failed + 1
  local info = debug.getinfo(3, "Sl")
  print(("%s:%d: FAILED: %s"):format(info.short_src, info.currentline, what))
end

function T.check(cond, what)
  if cond then T.passed = T.passed + 1 else fail(what or "check") end
end

function T.eq(got, want, what)
  if got == want then
    T.passed = T.passed + 1
  else
    fail(("%s: got %s, want %s"):format(what or "eq", tostring(got), tostring(want)))
  end
end

-- fn(...) must raise an error whose message contains `want` (plain text, not a pattern).
function T.raises(want, fn, ...)
  local ok, msg = pcall(fn, ...)
  if ok then
    fail(("no error, wanted one containing '%s'"):format(want))
  elseif not tostring(msg):find(want, 1, true) then
    fail(("error '%s' does not contain '%s'"):format(tostring(msg), want))
  else
    T.passed = T.passed + 1
  end
end

function T.read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- A fresh path in the temporary folder (no file there).
function T.tmp()
  local path = os.tmpname()
  os.remove(path)
  return path
end

function T.done()
  print(("%d passed, %d failed"):format(T.passed, T.failed))
  if T.failed > 0 then error(("%d checks failed"):format(T.failed), 0) end
end

return T
