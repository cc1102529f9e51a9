# memtrack device profile: NVIDIA GeForce RTX 4090
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = rtx4090
display_name = NVIDIA GeForce RTX 4090
cuda_total_bytes = 25386352640 | published | deviceQuery 'Total amount of global memory: 24210 MBytes (25386352640 bytes)', CUDA driver 12.4, in github.com/thamada/nvidia-smi gls/RTX4090_deviceQuery.py
cuda_total_driver = driver 550.127.05
cuda_total_variants = 25756696576 @ CUDA 12.1 driver; 25250627584 @ driver 580.126.20, CUDA 13.0; 24146083840 @ Windows driver | published | deviceQuery and PyTorch total_memory in public output: github.com/Seiyon/_ScanConversion README.md (CUDA 12.1: 24564 MBytes, no memory reserved); 25250627584 with driver_version 580.126.20 in public PyTorch environment records; 24146083840 on a Windows driver
nvidia_smi_total_mib = 24564 | published | nvidia-smi -q 'FB Memory Usage: Total 24564 MiB' (Reserved 354 MiB) under driver 550.127.05, github.com/thamada/nvidia-smi package/RTX4090_smi.py
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 1008 | published | NVIDIA product specification for NVIDIA GeForce RTX 4090
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
