# memtrack device profile: NVIDIA RTX PRO 6000 Blackwell Server Edition
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = rtx-pro-6000-blackwell
display_name = NVIDIA RTX PRO 6000 Blackwell Server Edition
cuda_total_bytes = 101974016000 | published | PyTorch _CudaDeviceProperties(name='NVIDIA RTX PRO 6000 Blackwell Server Edition', major=12, minor=0, total_memory=97250MB, multi_processor_count=188) in public PyTorch setup logs (torch 2.10 cu130)
cuda_total_driver = CUDA 13.0 driver
cuda_total_precision_bytes = 1048576 | published | PyTorch prints total_memory in whole MiB (total_memory // 2^20): the byte figure is known only to the MiB
nvidia_smi_total_mib = 97887 | published | nvidia-smi 'Total' 97887 MiB on this model, in public nvidia-smi output
compute_capability = 12.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1792 | published | NVIDIA product specification for NVIDIA RTX PRO 6000 Blackwell Server Edition
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
