# The model, forward pass, CPU backend and sampler (engine/model.c, forward.c, sampler.c, cpu/).
specscope_unit_test(test_backend_cpu SOURCES test_backend_cpu.c LABELS unit core)
# The same with the portable loops and more threads than chunks usually get.
add_test(NAME test_backend_cpu_portable COMMAND test_backend_cpu)
set_tests_properties(test_backend_cpu_portable PROPERTIES LABELS "unit;core"
                     ENVIRONMENT "SPECSCOPE_NO_SIMD=1;SPECSCOPE_THREADS=5")
specscope_unit_test(test_sampler SOURCES test_sampler.c LABELS unit core)
specscope_unit_test(test_forward SOURCES test_forward.c core_checkpoint.c LABELS unit core)
# Logits against Hugging Face references in tests/fixtures/*/reference.json (skips when none).
specscope_unit_test(test_fixtures SOURCES test_fixtures.c LABELS unit core)
set_tests_properties(test_fixtures PROPERTIES SKIP_RETURN_CODE 77)
