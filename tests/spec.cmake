# Speculative decoding (engine/spec.c) and sessions.
specscope_unit_test(test_spec SOURCES test_spec.c support/tiny_model.c LABELS unit)
