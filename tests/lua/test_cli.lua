-- test_cli.lua: `specscope run` from the outside: exit status and messages for bad usage, scripts
-- that fail to load, raise errors, loop forever (time limit, Ctrl-C) or allocate without end,
-- and the sandbox. Runs itself with --unsafe (it needs io.popen):
--   specscope run --unsafe tests/lua/test_cli.lua PATH/TO/specscope
local T = dofile((arg[0]:match("^(.*/)") or "./") .. "testlib.lua")
local bin = spec.args[1] or error("usage: specscope run --unsafe test_cli.lua SPECSCOPE", 0)
local here = arg[0]:match("^(.*/)") or "./"

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its exit status and what it printed (stdout and stderr).
local function sh(command)
  local p = assert(io.popen("{ " .. command .. "; } 2>&1"))
  local out = p:read("a")
  local _, how, code = p:close()
  return how == "exit" and code or 128 + code, out
end

local function run(args) return sh(quote(bin) .. " run " .. args) end

-- A script file holding code.
local function script(code)
  local path = T.tmp() .. ".lua"
  spec.write(path, code)
  return path
end

local function expect(args, want_code, ...)
  local code, out = run(args)
  T.eq(code, want_code, "exit status of 'run " .. args .. "' (output: " .. out .. ")")
  for _, text in ipairs{...} do
    T.check(out:find(text, 1, true), ("'run %s' printed '%s', not '%s'"):format(args, out, text))
  end
  return out
end

-- usage
expect("--help", 0, "usage: specscope run", "--memory-limit")
expect("", 2, "specscope run: no script given")
expect("--bogus x.lua", 2, "specscope run: unknown option '--bogus'")
expect("--memory-limit lots x.lua", 2, "--memory-limit 'lots' is not an integer")
expect("--time-limit", 2, "option --time-limit needs a value")

-- scripts that cannot load
expect(quote(here .. "no_such_script.lua"), 2, "cannot open", "no_such_script.lua")
expect(quote(here .. "fail_syntax.lua"), 2, "fail_syntax.lua:3:")

-- arguments and output
local echo = script("print(#spec.args, table.concat(spec.args, '|'), arg[0] ~= nil)")
expect(quote(echo) .. " a --b 'c d'", 0, "3\ta|--b|c d\ttrue")

-- an error: message with file:line, traceback, status 1
local out = expect(quote(here .. "fail_error.lua"), 1, "fail_error.lua:4: the table has no field 'missing'",
                   "stack traceback:", "fail_error.lua:8:", "fail_error.lua:11: in main chunk")
T.check(not out:find("Segmentation", 1, true) and not out:find("panic", 1, true), "a clean failure")
expect(quote(script("error({code = 3})")), 1, "(error object is a table value)")

-- an endless loop ends at the time limit, a sleeping script too
local loop = script("while true do end")
expect("--time-limit 0.3 " .. quote(loop), 1, ".lua:1: interrupted", "time limit reached")
expect("--time-limit 0.3 " .. quote(script("spec.sleep(100)")), 1, "interrupted")
expect("--time-limit 0.3 " .. quote(script("while true do pcall(function() while true do end end) end")), 1,
       "interrupted")

-- Ctrl-C (SIGINT) interrupts the script; the program reports it and exits by itself
local code, sigint_out = sh(("%s run %s & pid=$!; sleep 0.3; kill -INT $pid; wait $pid"):format(quote(bin), quote(loop)))
T.eq(code, 1, "exit status after SIGINT (" .. sigint_out .. ")")
T.check(sigint_out:find("interrupted", 1, true), "SIGINT: " .. sigint_out)

-- rows written before an interrupt stay on disk
local csv = T.tmp()
expect("--time-limit 0.5 " .. quote(script(("for i = 1, 3 do spec.csv(%q, {{i = i}}) end while true do end"):format(csv))),
       1, "interrupted")
T.eq(T.read(csv), "i\n1\n2\n3\n", "rows of an interrupted script")
os.remove(csv)

-- runaway allocation meets the memory cap
expect("--memory-limit 32 " .. quote(script("local t = {} while true do t[#t + 1] = ('x'):rep(1 << 20) .. #t end")), 1,
       "not enough memory", "32 MiB")

-- the sandbox, and --unsafe
expect(quote(script("os.execute('true')")), 1, "attempt to call a nil value (field 'execute')")
expect(quote(script("io.popen('true')")), 1, "attempt to call a nil value (field 'popen')")
expect(quote(script("os.exit(3)")), 1, "attempt to call a nil value (field 'exit')")
expect("--unsafe " .. quote(script("os.exit(3)")), 3)
expect("--unsafe " .. quote(script("print(io.popen('echo piped'):read('l'))")), 0, "piped")

T.done()
