-- test_pure.lua: the `spec` functions that need no model: version, args, parse_args, csv, json,
-- write, sleep, the sandbox, and the argument errors of spec.open. test_lua runs it with the
-- arguments --out x.csv -n 5 positional.
local T = dofile((arg[0]:match("^(.*/)") or "./") .. "testlib.lua")

-- spec.version, spec.args, arg -------------------------------------------------------------------
T.eq(type(spec.version), "string", "spec.version")
T.eq(#spec.args, 5, "#spec.args")
T.eq(spec.args[1], "--out", "spec.args[1]")
T.eq(spec.args[5], "positional", "spec.args[5]")
T.eq(arg[1], "--out", "arg[1]")
T.check(arg[0]:find("test_pure.lua", 1, true), "arg[0] is the script")
T.eq(require("spec"), spec, "require 'spec'")

-- spec.parse_args ---------------------------------------------------------------------------------
local o = spec.parse_args{out = "k.csv", n = 48, prompt = "hi", verbose = false}
T.eq(o.out, "x.csv", "--out")
T.eq(o.n, 5, "-n")
T.eq(math.type(o.n), "integer", "-n is an integer like its default")
T.eq(o.prompt, "hi", "default kept")
T.eq(o.verbose, false, "flag default")
T.eq(o[1], "positional", "positional argument")
o = spec.parse_args({temp = 0.5, max_tokens = 1, quiet = false, name = ""},
                    {"--temp=0.25", "--max-tokens", "7", "--quiet", "-1.5", "--name", "a b"})
T.eq(o.temp, 0.25, "--temp=0.25")
T.eq(o.max_tokens, 7, "dashes read as underscores")
T.eq(o.quiet, true, "flag")
T.eq(o[1], "-1.5", "a negative number is positional")
T.eq(o.name, "a b", "string value")
T.raises("unknown option '--nope'", spec.parse_args, {out = "x"}, {"--nope", "1"})
T.raises("option '--out' needs a value", spec.parse_args, {out = "x"}, {"--out"})
T.raises("option --n: '2.5' is not an integer", spec.parse_args, {n = 1}, {"-n", "2.5"})
T.raises("option --t: 'warm' is not a number", spec.parse_args, {t = 0.5}, {"--t", "warm"})
T.raises("option --quiet takes no value", spec.parse_args, {quiet = false}, {"--quiet=1"})
T.raises("must be a string, a number or a boolean", spec.parse_args, {f = {}}, {"--f", "1"})
T.raises("bad argument #1 to 'spec.parse_args' (table expected", spec.parse_args, "x")

-- spec.csv ----------------------------------------------------------------------------------------
local csv = T.tmp()
T.eq(spec.csv(csv, {{k = 1, rate = 0.5, name = "a,b"}, {k = 2, rate = 1 / 3, name = 'say "hi"'}}), 2, "rows written")
T.eq(T.read(csv), 'k,name,rate\n1,"a,b",0.5\n2,"say ""hi""",0.3333333333333333\n', "csv text")
-- a second call appends, without a second header; one row may be given as a plain table
spec.csv(csv, {k = 3, rate = 2.0, name = "multi\nline"})
T.eq(T.read(csv), 'k,name,rate\n1,"a,b",0.5\n2,"say ""hi""",0.3333333333333333\n3,"multi\nline",2\n',
     "appended row")
T.raises("already starts with another header ('k,name,rate'), not 'k,rate'", spec.csv, csv, {{k = 4, rate = 1}})
os.remove(csv)
-- explicit column order; missing cells are empty; booleans, integers, big floats, edge spaces
spec.csv(csv, {{b = true, a = 1e300}, {a = -7, c = " pad"}}, {"c", "a", "b"})
T.eq(T.read(csv), 'c,a,b\n,1e+300,true\n" pad",-7,\n', "explicit columns")
os.remove(csv)
spec.csv(csv, {}, {"x", "y"})
T.eq(T.read(csv), "x,y\n", "no rows: just the header")
os.remove(csv)
T.raises("no rows and no columns", spec.csv, csv, {})
T.raises("row 2 is not a table (got number)", spec.csv, csv, {{a = 1}, 5})
T.raises("row 1, column 'a': a table cannot be a CSV cell", spec.csv, csv, {{a = {}}})
T.raises("column 2 is not a string (got number)", spec.csv, csv, {{a = 1}}, {"a", 2})
T.raises("row 1 has a key that is not a string", spec.csv, csv, {{[true] = 1}})
T.raises("cannot append to '/nonexistent-dir/x.csv'", spec.csv, "/nonexistent-dir/x.csv", {{a = 1}})
T.raises("bad argument #2 to 'spec.csv' (table expected, got string)", spec.csv, csv, "rows")
T.eq(io.open(csv), nil, "failed calls wrote nothing")

-- spec.json ---------------------------------------------------------------------------------------
T.eq(spec.json{b = 1, a = {1, 2, 3}, c = 'x"y\n', d = true, e = 0.1, f = 2.0},
     '{"a":[1,2,3],"b":1,"c":"x\\"y\\n","d":true,"e":0.10000000000000001,"f":2.0}', "json object")
T.eq(spec.json{}, "[]", "empty table")
T.eq(spec.json(nil), "null", "nil")
T.eq(spec.json(-3), "-3", "integer")
T.eq(spec.json(math.maxinteger), "9223372036854775807", "64-bit integer")
T.eq(spec.json("é"), '"é"', "UTF-8 kept")
T.eq(spec.json{1, 2, x = 3}, '{"1":1,"2":2,"x":3}', "mixed table: an object")
T.eq(spec.json{[1] = "a", [3] = "c"}, '{"1":"a","3":"c"}', "holes: an object")
T.eq(spec.json({a = {b = 1}}, 2), '{\n  "a": {\n    "b": 1\n  }\n}', "indent")
local v = 1 / 3
T.eq(tonumber(spec.json(v)), v, "floats read back exactly")
T.raises("NaN cannot be written as JSON", spec.json, {0 / 0})
T.raises("infinity cannot be written as JSON", spec.json, math.huge)
T.raises("a function cannot be written as JSON", spec.json, {f = print})
local cycle = {}
cycle.self = cycle
T.raises("does a table contain itself?", spec.json, cycle)
T.raises("is not valid UTF-8", spec.json, "\xff")
T.raises("a boolean key cannot be a JSON object key", spec.json, {[true] = 1})
T.raises("indent must be in [0, 31]", spec.json, {}, 40)
T.raises("bad argument #1 to 'spec.json' (value expected)", spec.json)

-- spec.write --------------------------------------------------------------------------------------
local path = T.tmp()
spec.write(path, "first\n")
T.eq(T.read(path), "first\n", "written")
spec.write(path, "second")
T.eq(T.read(path), "second", "replaced whole")
spec.write(path, "")
T.eq(T.read(path), "", "empty file")
os.remove(path)
T.raises("spec.write: cannot create '/nonexistent-dir/out.json.tmp.", spec.write, "/nonexistent-dir/out.json", "x")
T.raises("bad argument #2 to 'spec.write' (string expected, got table)", spec.write, path, {})

-- spec.sleep --------------------------------------------------------------------------------------
spec.sleep(0.02)
spec.sleep(0)
T.raises("non-negative number of seconds", spec.sleep, -1)
T.raises("number expected, got string", spec.sleep, "soon")

-- the sandbox (safe mode) -------------------------------------------------------------------------
T.eq(os.execute, nil, "no os.execute")
T.eq(io.popen, nil, "no io.popen")
T.eq(os.exit, nil, "no os.exit")
T.eq(package.loadlib, nil, "no package.loadlib")
T.eq(package.cpath, "", "no C module path")
T.eq(debug.sethook, nil, "no debug.sethook")
T.eq(type(debug.traceback), "function", "debug.traceback stays")
T.eq(load("return 1 + 1")(), 2, "text chunks load")
local dumped = string.dump(function() return 1 end)
local f, msg = load(dumped)
T.check(f == nil and msg:find("binary", 1, true), "binary chunks refused by load")
f, msg = load(dumped, "x", "b")
T.check(f == nil and msg:find("binary", 1, true), "even when asked for")
local bin = T.tmp()
spec.write(bin, dumped)
f, msg = loadfile(bin)
T.check(f == nil and msg:find("binary", 1, true), "binary chunks refused by loadfile")
T.raises("binary", dofile, bin)
-- require finds Lua modules on package.path, text only
local dir = T.tmp()
local saved_path = package.path
package.path = dir .. "_?.lua"
spec.write(dir .. "_mod_text.lua", "return {answer = 42}")
T.eq(require("mod_text").answer, 42, "require of a Lua module")
os.rename(bin, dir .. "_mod_binary.lua")
T.raises("binary", require, "mod_binary")
T.raises("module 'mod_absent' not found", require, "mod_absent")
package.path = saved_path
os.remove(dir .. "_mod_text.lua")
os.remove(dir .. "_mod_binary.lua")

-- spec.open: bad arguments fail before any model loads --------------------------------------------
T.raises("bad argument #1 to 'spec.open' (table expected, got number)", spec.open, 5)
T.raises("spec: open: unknown option 'bogus'", spec.open, {bogus = 1})
T.raises("spec: open: model must be a string (got 3)", spec.open, {model = 3})
T.raises("backend must be \"auto\", \"cpu\" or \"cuda\" (got \"gpu\")", spec.open, {model = "x", backend = "gpu"})
T.raises("max_context must be an integer in [16, 1048576] (got 2)", spec.open, {model = "x", max_context = 2})
T.raises("draft must be a string (got true)", spec.open, {model = "x", draft = true})
T.raises("/nonexistent-model", spec.open, {model = "/nonexistent-model"})
T.eq(spec.current, nil, "no spec.current without an interface session")

T.done()
