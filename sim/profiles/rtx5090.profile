# memtrack device profile: NVIDIA GeForce RTX 5090
# Format: key = value | measured, published or estimated | source
name = rtx5090
display_name = NVIDIA GeForce RTX 5090
cuda_total_bytes = 33680457728 | measured | totalGlobalMem on one system (another reports 33677180928), as given in memtrack issue #4
nvidia_smi_total_mib = 32607 | published | nvidia-smi "Total" on this model; figure given in memtrack issue #4
compute_capability = 12.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1792 | published | NVIDIA product specification for NVIDIA GeForce RTX 5090
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
usable_bytes = 25769803776 | estimated | 24 GiB usable by default on a 32 GB card (memtrack issue #4), leaving 7+ GiB for display, context and other processes
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
