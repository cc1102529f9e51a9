# memtrack device profile: NVIDIA H20
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = h20
display_name = NVIDIA H20
cuda_total_bytes = 102010716160 | published | PyTorch _CudaDeviceProperties(name='NVIDIA H20', major=9, minor=0, total_memory=97285MB, multi_processor_count=78), quoted in public attention-kernel sources
cuda_total_precision_bytes = 1048576 | published | PyTorch prints total_memory in whole MiB (total_memory // 2^20): the byte figure is known only to the MiB
nvidia_smi_total_mib = 97871 | published | nvidia-smi 'Total' 97871 MiB on this model, in public nvidia-smi output
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 4000 | published | NVIDIA product specification for NVIDIA H20
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
