# LoRA adapters (engine/lora.c) against transformers + peft references in tests/fixtures/lora
# (scripts/make_lora_fixtures.py), bad adapters, and the CLI.
specscope_unit_test(test_lora SOURCES test_lora.c LABELS unit core)
# The same adapters on the CUDA backend against the CPU (prompt, decode steps through graphs).
add_test(NAME test_gpu_lora COMMAND test_lora cuda)
set_tests_properties(test_lora test_gpu_lora PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(test_gpu_lora PROPERTIES LABELS gpu TIMEOUT 300)
# `specscope lora-info` and `generate --lora` end to end (tests/lora_cli.sh).
add_test(NAME lora_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lora_cli.sh $<TARGET_FILE:specscope> ${CMAKE_SOURCE_DIR}/tests/fixtures)
set_tests_properties(lora_cli PROPERTIES LABELS "lora;cli" SKIP_RETURN_CODE 77 TIMEOUT 120)
