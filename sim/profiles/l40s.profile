# memtrack device profile: NVIDIA L40S
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = l40s
display_name = NVIDIA L40S
cuda_total_bytes = 47803596800 | published | deviceQuery 'Total amount of global memory: 45589 MBytes (47803596800 bytes)', CUDA driver 12.4, in github.com/thamada/nvidia-smi nvsim/L40S_deviceQuery.py
cuda_total_driver = driver 550.127.05
cuda_total_variants = 47576711168 @ CUDA 12.4 driver, another system | published | deviceQuery 'Total amount of global memory: 45373 MBytes (47576711168 bytes)' in github.com/alvarobartt/cuda-device-query README.md
nvidia_smi_total_mib = 46068 | published | nvidia-smi -q 'FB Memory Usage: Total 46068 MiB' under driver 550.127.05, github.com/thamada/nvidia-smi nvsim/L40S_smi.py
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 864 | published | NVIDIA product specification for NVIDIA L40S
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
