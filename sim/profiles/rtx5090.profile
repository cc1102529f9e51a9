# memtrack device profile: NVIDIA GeForce RTX 5090
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = rtx5090
display_name = NVIDIA GeForce RTX 5090
cuda_total_bytes = 33680457728 | published | deviceQuery 'Total amount of global memory: 32120 MBytes (33680457728 bytes)', CUDA driver 12.8, in github.com/thamada/gls gls/RTX5090_deviceQuery.py
cuda_total_driver = driver 570.124.06
cuda_total_variants = 33668857856 @ CUDA 13.0 driver; 33660534784 @ CUDA 13.0 driver, another system | published | deviceQuery 'Total amount of global memory: 32109 MBytes (33668857856 bytes)' and cudaGetDeviceProperties totalGlobalMem in public output under CUDA 13.0 drivers
nvidia_smi_total_mib = 32607 | published | nvidia-smi -q 'FB Memory Usage: Total 32607 MiB' (Reserved 487 MiB) under driver 570.124.06, github.com/thamada/gls gls/RTX5090_smi.py
compute_capability = 12.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1792 | published | NVIDIA product specification for NVIDIA GeForce RTX 5090
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
usable_bytes = 25769803776 | estimated | memtrack default: 24 GiB usable on a 32 GB card, leaving 7+ GiB for display, context and other processes
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
