# memtrack device profile: NVIDIA B200
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = b200
display_name = NVIDIA B200
cuda_total_bytes = 191502483456 | published | PyTorch _CudaDeviceProperties(name='NVIDIA B200', major=10, minor=0, total_memory=182631MB, multi_processor_count=148) in public PyTorch benchmark logs; 182631 MiB also printed by a public CUDA device-info program
cuda_total_precision_bytes = 1048576 | published | PyTorch prints total_memory in whole MiB (total_memory // 2^20): the byte figure is known only to the MiB
cuda_total_variants = 191514017792 ~ 1MiB @ an unrecorded driver, PyTorch total_memory=182642MB | published | PyTorch torch.cuda.get_device_properties 'total_memory=182642MB' in public PyTorch logs; OOM messages give 178.35 and 178.36 GiB
nvidia_smi_total_mib = 183359 | published | nvidia-smi 'Total' 183359 MiB on this model, in public nvidia-smi output
compute_capability = 10.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 8000 | published | NVIDIA product specification for NVIDIA B200
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
