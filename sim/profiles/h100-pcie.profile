# memtrack device profile: NVIDIA H100 PCIe
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = h100-pcie
display_name = NVIDIA H100 PCIe
cuda_total_bytes = 85045477376 | published | nvaccelinfo 'Global Memory Size: 85045477376' on an H100 PCIe under driver 565.57.01 (public NVIDIA HPC SDK nvaccelinfo output); deviceQuery on the SXM model, github.com/thamada/nvidia-smi nvsim/H100SXMx8_deviceQuery.py, reports the same
cuda_total_driver = driver 565.57.01
nvidia_smi_total_mib = 81559 | published | nvidia-smi 'Total' 81559 MiB on the 80 GB H100, listed in https://github.com/modal-labs/modal-client/pull/2797
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 2000 | published | NVIDIA product specification for NVIDIA H100 PCIe
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
