# memtrack device profile: NVIDIA H100 NVL
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = h100-nvl
display_name = NVIDIA H100 NVL
cuda_total_bytes = 99861594112 | published | deviceQuery 'Total amount of global memory: 95235 MBytes (99861594112 bytes)', CUDA driver 12.4, in github.com/thamada/nvidia-smi gls/H100NVLx2_deviceQuery.py
cuda_total_driver = driver 550.54.14
nvidia_smi_total_mib = 95830 | published | nvidia-smi -q 'FB Memory Usage: Total 95830 MiB' under driver 550.54.14, github.com/thamada/nvidia-smi nvsim/H100NVLx2_smi.py
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 3900 | published | NVIDIA product specification for NVIDIA H100 NVL
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
