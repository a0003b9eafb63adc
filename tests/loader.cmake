# Checkpoint loading (engine/safetensors.c, engine/config.c): unit tests, the CLI bad-input test and
# the libFuzzer targets (built only with -DSPECSCOPE_FUZZ=ON and clang; scripts/fuzz.sh drives them).
specscope_unit_test(test_safetensors SOURCES test_safetensors.c LABELS loader)
specscope_unit_test(test_config SOURCES test_config.c LABELS loader)

add_test(NAME loader_badinput COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/badinput.sh $<TARGET_FILE:specscope>)
set_tests_properties(loader_badinput PROPERTIES LABELS "loader;cli" SKIP_RETURN_CODE 77)

if(SPECSCOPE_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SPECSCOPE_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang-14")
  endif()
  # Only the loader's sources, all instrumented; the rest of the engine is not needed.
  add_executable(fuzz_loader fuzz/fuzz_loader.c ${CMAKE_SOURCE_DIR}/engine/safetensors.c
                 ${CMAKE_SOURCE_DIR}/engine/config.c ${CMAKE_SOURCE_DIR}/engine/error.c
                 ${CMAKE_SOURCE_DIR}/engine/dtype.c)
  target_include_directories(fuzz_loader PRIVATE ${CMAKE_SOURCE_DIR}/engine)
  target_compile_options(fuzz_loader PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_loader PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_loader PRIVATE PkgConfig::JANSSON)
  # PEFT LoRA adapters loaded onto a test checkpoint: the whole engine (CPU), instrumented too.
  target_compile_options(specscope_engine PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-sanitize-recover=undefined)
  add_executable(fuzz_lora fuzz/fuzz_lora.c)
  target_compile_definitions(fuzz_lora PRIVATE FIXTURES_DIR="${SPECSCOPE_FIXTURES}")
  target_compile_options(fuzz_lora PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_lora PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_lora PRIVATE specscope_engine)
endif()

# `generate --prompt-ids ... --temp 0 --json` prints transformers' greedy ids for every f32 fixture.
add_test(NAME generate_fixtures COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/generate_fixtures.sh $<TARGET_FILE:specscope>
         ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
set_tests_properties(generate_fixtures PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77)
