# memtrack device profile: NVIDIA A100-SXM4-40GB
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = a100-40gb
display_name = NVIDIA A100-SXM4-40GB
cuda_total_bytes = 42298834944 | published | deviceQuery 'Total amount of global memory: 40339 MBytes (42298834944 bytes)', CUDA 12.2 driver, in https://github.com/bottlerocket-os/bottlerocket/pull/3873 (the PCIe 40GB reports the same)
cuda_total_driver = CUDA 12.2 driver
nvidia_smi_total_mib = 40960 | published | nvidia-smi 'Total' 40960 MiB on this model, listed in https://github.com/modal-labs/modal-client/pull/2797
compute_capability = 8.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1555 | published | NVIDIA product specification for NVIDIA A100-SXM4-40GB
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
