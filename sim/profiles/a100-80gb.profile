# memtrack device profile: NVIDIA A100 80GB
# Format: key = value | measured, published or estimated | source
name = a100-80gb
display_name = NVIDIA A100 80GB
cuda_total_bytes = 85039513600 | estimated | about 79.2 GiB (memtrack issue #4); rounded down to a MiB
nvidia_smi_total_mib = 81920 | published | nvidia-smi "Total" on this model; modal-labs/modal-client PR #2797 lists A100 80GB: 81920MiB
compute_capability = 8.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 2039 | published | NVIDIA product specification for NVIDIA A100 80GB
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
