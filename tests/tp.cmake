# Tensor parallelism on CPU ranks (engine/tp.c, the split in model.c / forward.c).
specscope_unit_test(test_tp SOURCES test_tp.c core_checkpoint.c LABELS unit)
