# memtrack device profile: NVIDIA B200
# Format: key = value | measured, published or estimated | source
name = b200
display_name = NVIDIA B200
cuda_total_bytes = 191554912256 | estimated | about 178.4 GiB (memtrack issue #4); rounded down to a MiB
nvidia_smi_total_mib = 183359 | published | nvidia-smi "Total" on this model; figure given in memtrack issue #4
compute_capability = 10.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 8000 | published | NVIDIA product specification for NVIDIA B200
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
