# memtrack device profile: NVIDIA A100-SXM4-80GB
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = a100-80gb
display_name = NVIDIA A100-SXM4-80GB
cuda_total_bytes = 85100068864 | published | deviceQuery 'Total amount of global memory: 81158 MBytes (85100068864 bytes)', CUDA driver 12.5, in github.com/thamada/nvidia-smi gls/A100SXMx4_deviceQuery.py
cuda_total_driver = driver 555.42.02
cuda_total_variants = 84987740160 @ CUDA 12.2 driver; 84974239744 @ an unrecorded driver, a Kineto trace | published | deviceQuery in public output under a CUDA 12.2 driver; totalGlobalMem 84974239744 in a public PyTorch profiler (Kineto) trace's deviceProperties for an A100-SXM4-80GB
nvidia_smi_total_mib = 81920 | published | nvidia-smi -q 'FB Memory Usage: Total 81920 MiB' (Reserved 763 MiB) under driver 555.42.02, github.com/thamada/nvidia-smi gls/A100SXMx4_smi.py
compute_capability = 8.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 2039 | published | NVIDIA product specification for NVIDIA A100-SXM4-80GB
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
