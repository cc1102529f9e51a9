# memtrack device profile: NVIDIA L40S
# Format: key = value | measured, published or estimated | source
name = l40s
display_name = NVIDIA L40S
cuda_total_bytes = 47695527936 | estimated | about 44.42 GiB (memtrack issue #4); rounded down to a MiB
nvidia_smi_total_mib = 46068 | published | nvidia-smi "Total" on this model; modal-labs/modal-client PR #2797 lists L40S: 46068MiB
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 864 | published | NVIDIA product specification for NVIDIA L40S
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
