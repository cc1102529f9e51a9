# memtrack device profile: NVIDIA H200
# Format: key = value | measured, published or estimated | source
name = h200
display_name = NVIDIA H200
cuda_total_bytes = 150108897280 | estimated | about 139.8 GiB (memtrack issue #4); rounded down to a MiB; to be replaced by the measured value (issue #7)
nvidia_smi_total_mib = 143771 | published | nvidia-smi "Total" on this model; figure given in memtrack issue #4
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 4800 | published | NVIDIA product specification for NVIDIA H200
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
