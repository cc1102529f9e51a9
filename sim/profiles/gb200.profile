# memtrack device profile: NVIDIA GB200
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = gb200
display_name = NVIDIA GB200
cuda_total_bytes = 197900894208 | published | PyTorch OOM messages 'GPU 0 has a total capacity of 184.31 GiB' on GB200 in public vLLM and training logs: 184.31 GiB is 188733.44 MiB, taken as 188733 MiB
cuda_total_precision_bytes = 6291456 | published | PyTorch prints the capacity in GiB with two decimals (± 0.005 GiB = 5.12 MiB), rounded up to 6 MiB
nvidia_smi_total_mib = 189471 | published | nvidia-smi 'Total' 189471 MiB on this model, in public nvidia-smi output
compute_capability = 10.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 8000 | published | NVIDIA product specification for NVIDIA GB200
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
