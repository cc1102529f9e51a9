# memtrack device profile: NVIDIA A100 80GB PCIe
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = a100-80gb-pcie
display_name = NVIDIA A100 80GB PCIe
cuda_total_bytes = 84974239744 | published | deviceQuery 'Total amount of global memory: 81038 MBytes (84974239744 bytes)', CUDA driver 12.4, in a university cluster's public documentation; the same total_memory with driver 550.120 in public PyTorch environment records
cuda_total_driver = CUDA 12.4 driver
nvidia_smi_total_mib = 81920 | published | nvidia-smi 'Total' 81920 MiB on the 80 GB A100 (as for the SXM4 model, github.com/thamada/nvidia-smi gls/A100SXMx4_smi.py)
compute_capability = 8.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1935 | published | NVIDIA product specification for NVIDIA A100 80GB PCIe
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
