# The embedded Lua interpreter and the `spec` module (lua/*.c, tui/cmd_run.c, scripts/*.lua).
file(GLOB SPEC_LUA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/lua/*.c)
specscope_unit_test(test_lua SOURCES test_lua.c ${SPEC_LUA_SOURCES} LABELS unit lua)
target_include_directories(test_lua PRIVATE ${CMAKE_SOURCE_DIR}/lua ${CMAKE_SOURCE_DIR}/tui)
target_link_libraries(test_lua PRIVATE PkgConfig::LUA)
set_tests_properties(test_lua PROPERTIES TIMEOUT 120)

# Sessions from Lua on the demo pair, with spec.current and an observer (skips without models/demo).
add_test(NAME test_lua_session COMMAND test_lua session)
set_tests_properties(test_lua_session PROPERTIES LABELS "unit;lua" SKIP_RETURN_CODE 77 TIMEOUT 300)
# s:trace() and s:trace_save() on the demo pair, under a host tracer of its own (skips without models/demo).
add_test(NAME test_lua_trace COMMAND test_lua trace)
set_tests_properties(test_lua_trace PROPERTIES LABELS "unit;lua" SKIP_RETURN_CODE 77 TIMEOUT 300)

# `specscope run` from the outside: exit status and messages of failing, looping and hungry scripts.
add_test(NAME lua_run_cli COMMAND specscope run --unsafe ${CMAKE_CURRENT_SOURCE_DIR}/lua/test_cli.lua
         $<TARGET_FILE:specscope>)
set_tests_properties(lua_run_cli PROPERTIES LABELS "lua" TIMEOUT 120)

# Scripts on the demo pair; each prints SKIPPED and returns 77 when models/demo is absent.
set(SPEC_LUA_DEMO_CONFIG ${CMAKE_SOURCE_DIR}/models/demo/target/config.json)
set(SPEC_LUA_SKIP_WITHOUT_DEMO
    "test -f '${SPEC_LUA_DEMO_CONFIG}' || { echo 'SKIPPED: no demo pair (${SPEC_LUA_DEMO_CONFIG} is absent)'; exit 77; }")
# The issue's must-show: sweep_k.lua writes 8 rows with acceptance in (0, 1] and speedup > 0.
add_test(NAME lua_sweep_k COMMAND sh -c
         "${SPEC_LUA_SKIP_WITHOUT_DEMO}; rm -f \"$2\" && \"$1\" run \"$3\" --out \"$2\" -n 16 --repeats 1 && \"$1\" run \"$4\" \"$2\""
         sh $<TARGET_FILE:specscope> ${CMAKE_CURRENT_BINARY_DIR}/lua_sweep_k.csv
         ${CMAKE_SOURCE_DIR}/scripts/sweep_k.lua ${CMAKE_CURRENT_SOURCE_DIR}/lua/check_sweep_csv.lua)
# A script written only from the issue's API listing runs unchanged.
add_test(NAME lua_contract_example COMMAND sh -c "${SPEC_LUA_SKIP_WITHOUT_DEMO}; exec \"$1\" run \"$2\" first second"
         sh $<TARGET_FILE:specscope> ${CMAKE_CURRENT_SOURCE_DIR}/lua/contract_example.lua)
# The other two experiment scripts run to the end and write their rows.
add_test(NAME lua_experiment_scripts COMMAND sh -c
         "${SPEC_LUA_SKIP_WITHOUT_DEMO}; set -e; \"$1\" run \"$2\" --out \"$4\" -n 12 --repeats 1 --seeds 1 --temperatures 0,1; test $(wc -l < \"$4\") -eq 3; \"$1\" run \"$3\" --out \"$5\" -n 12 --repeats 1; test $(wc -l < \"$5\") -eq 4"
         sh $<TARGET_FILE:specscope> ${CMAKE_SOURCE_DIR}/scripts/sweep_temperature.lua
         ${CMAKE_SOURCE_DIR}/scripts/easyspec_groups.lua ${CMAKE_CURRENT_BINARY_DIR}/lua_temperature.csv
         ${CMAKE_CURRENT_BINARY_DIR}/lua_easyspec.csv)
set_tests_properties(lua_sweep_k lua_contract_example lua_experiment_scripts PROPERTIES
                     LABELS "lua" SKIP_RETURN_CODE 77 TIMEOUT 300)
# A chat generation rendered by spec.chat_template stops at the chat format's end-of-turn token.
add_test(NAME lua_chat_template_stop COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/chat_template_stop.sh $<TARGET_FILE:specscope>
         ${PROJECT_SOURCE_DIR}/models/demo/target ${CMAKE_CURRENT_SOURCE_DIR}/lua/chat_template_tokens.lua)
set_tests_properties(lua_chat_template_stop PROPERTIES LABELS "lua;cli" SKIP_RETURN_CODE 77)

# The LoRA methods (s:lora_load / lora_scale / lora_enable / lora_unload / lora_norms) on a test
# checkpoint and its PEFT adapter (tests/fixtures/lora).
add_test(NAME lua_lora COMMAND specscope run ${CMAKE_CURRENT_SOURCE_DIR}/lua/test_lora.lua ${CMAKE_SOURCE_DIR}/tests/fixtures)
set_tests_properties(lua_lora PROPERTIES LABELS "lua;lora" TIMEOUT 120)
# scripts/sweep_lora_scale.lua on the demo pair with its PEFT adapter: one CSV row a scale.
add_test(NAME lua_sweep_lora COMMAND sh -c
         "${SPEC_LUA_SKIP_WITHOUT_DEMO}; rm -f \"$2\" && \"$1\" run \"$3\" --adapter \"$5\" --scales 0,1 --out \"$2\" -n 12 --repeats 1 --backend cpu && \"$1\" run \"$4\" \"$2\""
         sh $<TARGET_FILE:specscope> ${CMAKE_CURRENT_BINARY_DIR}/lua_sweep_lora.csv
         ${CMAKE_SOURCE_DIR}/scripts/sweep_lora_scale.lua ${CMAKE_CURRENT_SOURCE_DIR}/lua/check_lora_csv.lua
         ${CMAKE_SOURCE_DIR}/tests/fixtures/lora/demo-r4)
set_tests_properties(lua_sweep_lora PROPERTIES LABELS "lua;lora" SKIP_RETURN_CODE 77 TIMEOUT 120)
