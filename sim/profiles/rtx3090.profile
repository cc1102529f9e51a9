# memtrack device profile: NVIDIA GeForce RTX 3090
# Format: key = value | measured, published or estimated | source
name = rtx3090
display_name = NVIDIA GeForce RTX 3090
cuda_total_bytes = 25286672384 | published | deviceQuery: 24115 MBytes (25286672384 bytes), as given in memtrack issue #4
nvidia_smi_total_mib = 24576 | published | nvidia-smi "Total" on this model; NVIDIA-SMI 580.142 output in noonghunna/club-3090 issue #390 shows 24576MiB
compute_capability = 8.6 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 936 | published | NVIDIA product specification for NVIDIA GeForce RTX 3090
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 402653184 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
