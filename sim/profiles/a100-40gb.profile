# memtrack device profile: NVIDIA A100-SXM4-40GB
# Format: key = value | measured, published or estimated | source
name = a100-40gb
display_name = NVIDIA A100-SXM4-40GB
cuda_total_bytes = 42298834944 | published | deviceQuery: 40339 MBytes (42298834944 bytes), bottlerocket-os/bottlerocket PR #3873
nvidia_smi_total_mib = 40960 | published | nvidia-smi "Total" on this model; modal-labs/modal-client PR #2797 lists A100 40GB: 40960MiB
compute_capability = 8.0 | published | NVIDIA CUDA GPUs list (developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1555 | published | NVIDIA product specification for NVIDIA A100-SXM4-40GB
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
