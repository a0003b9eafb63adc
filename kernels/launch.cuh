/* launch.cuh — how the backend launches every kernel of kernels/: on its one stream, with
 * programmatic dependent launch when enabled (see common.cuh for the rule the kernels keep). */
#ifndef SPECSCOPE_KERNELS_LAUNCH_CUH
#define SPECSCOPE_KERNELS_LAUNCH_CUH

#include <cuda_runtime.h>

namespace sk {

struct launch_ctx {
    cudaStream_t stream;
    bool pdl;         /* programmatic dependent launch (Hopper); off: plain stream order */
    int sms;          /* multiprocessors of the device */
    size_t smem_optin; /* the most dynamic shared memory one block may ask for */
};

template <typename... KArgs, typename... Args>
inline cudaError_t launch_kernel(const launch_ctx &c, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                 Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c.stream;
    cfg.attrs = attr;
    cfg.numAttrs = c.pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

} // namespace sk

#endif
