# Speculative decoding (engine/spec.c) and sessions.
specscope_unit_test(test_spec SOURCES test_spec.c core_checkpoint.c LABELS unit)
