# memtrack device profile: NVIDIA H100 80GB HBM3
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = h100-sxm
display_name = NVIDIA H100 80GB HBM3
cuda_total_bytes = 85045477376 | published | deviceQuery 'Total amount of global memory: 81106 MBytes (85045477376 bytes)', CUDA driver 12.7, in github.com/thamada/nvidia-smi nvsim/H100SXMx8_deviceQuery.py
cuda_total_driver = driver 565.57.01
cuda_total_variants = 85028896768 @ CUDA 12.8 driver; 85017755648 @ CUDA 13.0 driver | published | deviceQuery 'Total amount of global memory' in public output (81079 MBytes (85017755648 bytes) under a CUDA 13.0 driver)
nvidia_smi_total_mib = 81559 | published | nvidia-smi -q 'FB Memory Usage: Total 81559 MiB' (Reserved 454 MiB) under driver 565.57.01, github.com/thamada/nvidia-smi nvsim/H100SXMx8_smi.py
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 3350 | published | NVIDIA product specification for NVIDIA H100 80GB HBM3
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
