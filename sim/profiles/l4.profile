# memtrack device profile: NVIDIA L4
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = l4
display_name = NVIDIA L4
cuda_total_bytes = 23570219008 | published | deviceQuery 'Total amount of global memory: 22478 MBytes (23570219008 bytes)', CUDA driver 12.4, in github.com/thamada/nvidia-smi gls/L4_deviceQuery.py; the same total_memory and mem_get_info total beside nvidia-smi 23034 in public PyTorch benchmark reports
cuda_total_driver = driver 550.90.07
cuda_total_variants = 23612293120 @ CUDA 12.0 driver; 23583784960 @ an unrecorded driver | published | deviceQuery output in github.com/bottlerocket-os/bottlerocket-kernel-kit/pull/139 (CUDA 12.0) and public deviceQuery output
nvidia_smi_total_mib = 23034 | published | nvidia-smi -q 'FB Memory Usage: Total 23034 MiB' (Reserved 556 MiB) under driver 550.90.07, github.com/thamada/nvidia-smi gls/L4_smi.py
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 300 | published | NVIDIA product specification for NVIDIA L4
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 402653184 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
