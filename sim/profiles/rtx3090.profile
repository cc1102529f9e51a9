# memtrack device profile: NVIDIA GeForce RTX 3090
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = rtx3090
display_name = NVIDIA GeForce RTX 3090
cuda_total_bytes = 25327697920 | published | deviceQuery 'Total amount of global memory: 24154 MBytes (25327697920 bytes)', CUDA driver 12.6, in github.com/thamada/nvidia-smi gls/RTX3090_deviceQuery.py
cuda_total_driver = driver 560.35.03
cuda_total_variants = 25414860800 @ CUDA 12.1/12.2 driver; 25447170048 @ CUDA 11.8 driver; 25443893248 @ CUDA 11.8 driver, another system | published | deviceQuery 'Total amount of global memory' in public output under CUDA 12.1/12.2 and 11.8 drivers
nvidia_smi_total_mib = 24576 | published | nvidia-smi -q 'FB Memory Usage: Total 24576 MiB' (Reserved 422 MiB) under driver 560.35.03, github.com/thamada/nvidia-smi gls/RTX3090_smi.py
compute_capability = 8.6 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 936 | published | NVIDIA product specification for NVIDIA GeForce RTX 3090
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 402653184 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
