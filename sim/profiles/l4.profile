# memtrack device profile: NVIDIA L4
# Format: key = value | measured, published or estimated | source
name = l4
display_name = NVIDIA L4
cuda_total_bytes = 23583784960 | published | deviceQuery figure given in memtrack issue #4
nvidia_smi_total_mib = 23034 | published | nvidia-smi "Total" on this model; modal-labs/modal-client PR #2797 lists L4: 23034MiB
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 300 | published | NVIDIA product specification for NVIDIA L4
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 402653184 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
