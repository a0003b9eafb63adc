# Tensor parallelism on CPU ranks (engine/tp.c, the split in model.c / forward.c).
specscope_unit_test(test_tp SOURCES test_tp.c core_checkpoint.c LABELS unit)

# `specscope bench --tp-scaling` on CPU ranks: the JSON entries, with and without a draft, and a
# rank count that does not divide the heads.
add_test(NAME tp_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tp_cli.sh $<TARGET_FILE:specscope> ${CMAKE_SOURCE_DIR}/models/demo)
set_tests_properties(tp_cli PROPERTIES LABELS "tp;cli" SKIP_RETURN_CODE 77 TIMEOUT 300)
