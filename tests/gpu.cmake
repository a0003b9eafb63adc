# GPU tests (label gpu): the CUDA backend against the CPU backend and the transformers fixtures.
# They run on the GPU machine (scripts/gpu-check.sh); without a CUDA device (CI) each prints
# "SKIPPED: no CUDA device (...)" and exits 77, which CTest reports as skipped.
specscope_unit_test(test_gpu_ops SOURCES gpu/test_gpu_ops.c LABELS gpu)
specscope_unit_test(test_gpu_model SOURCES gpu/test_gpu_model.c core_checkpoint.c LABELS gpu)
# Tensor parallelism at one rank through the NCCL communicator (skipped too without libnccl.so.2).
specscope_unit_test(test_gpu_tp SOURCES gpu/test_gpu_tp.c LABELS gpu)
set_tests_properties(test_gpu_ops test_gpu_model test_gpu_tp PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
# Token choice on the device (argmax_rows, sample_rows) against engine/sampler.c.
specscope_unit_test(test_gpu_sampling SOURCES gpu/test_gpu_sampling.c core_checkpoint.c LABELS gpu)
set_tests_properties(test_gpu_sampling PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# Kernel timelines through CUPTI (engine/cuda/cupti_trace.cu), graph-launched kernels included.
specscope_unit_test(test_gpu_trace SOURCES gpu/test_gpu_trace.c core_checkpoint.c LABELS gpu)
set_tests_properties(test_gpu_trace PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# The ceilings and GEMV-against-cuBLASLt timings (printed by scripts/gpu-check.sh, not a test).
add_executable(bench_gpu_kernels gpu/bench_gpu_kernels.c)
target_link_libraries(bench_gpu_kernels PRIVATE specscope_engine)
target_include_directories(bench_gpu_kernels PRIVATE ${CMAKE_SOURCE_DIR}/engine)
