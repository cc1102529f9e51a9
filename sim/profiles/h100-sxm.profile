# memtrack device profile: NVIDIA H100 80GB HBM3
# Format: key = value | measured, published or estimated | source
name = h100-sxm
display_name = NVIDIA H100 80GB HBM3
cuda_total_bytes = 85045477376 | published | totalGlobalMem figure given in memtrack issue #4
nvidia_smi_total_mib = 81559 | published | nvidia-smi "Total" on this model; modal-labs/modal-client PR #2797 lists H100: 81559MiB
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 3350 | published | NVIDIA product specification for NVIDIA H100 80GB HBM3
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
