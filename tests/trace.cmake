# The tracer (engine/trace.c, engine/cuda/cupti_trace.cu) and the --trace / --kernels options.
#   test_trace   ring buffer, host spans, Chrome trace JSON, per-kernel summary, kernel names, bad paths
#   trace_cli    `specscope generate --trace` and `specscope bench --trace` on the CPU write valid traces
#                with host events; an unwritable path is refused up front (exit 2, one line)
specscope_unit_test(test_trace SOURCES test_trace.c LABELS trace)
target_link_libraries(test_trace PRIVATE PkgConfig::JANSSON)

add_test(NAME trace_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/trace_cli.sh $<TARGET_FILE:specscope>
         ${CMAKE_SOURCE_DIR}/models/demo/target)
set_tests_properties(trace_cli PROPERTIES LABELS "trace;cli" SKIP_RETURN_CODE 77 TIMEOUT 300)
