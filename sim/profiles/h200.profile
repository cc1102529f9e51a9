# memtrack device profile: NVIDIA H200
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = h200
display_name = NVIDIA H200
cuda_total_bytes = 150021734400 | published | deviceQuery 'Total amount of global memory: 143072 MBytes (150021734400 bytes)', CUDA driver 12.4, in github.com/thamada/gls gls/H200_deviceQuery.py (a pass-through VM)
cuda_total_driver = driver 550.90.12 in a pass-through VM
cuda_total_variants = 150109945856 ~ 1MiB @ an unrecorded driver, PyTorch total_memory=143156MB | published | PyTorch torch.cuda.get_device_properties 'total_memory=143156MB' (whole MiB) in public PyTorch logs
nvidia_smi_total_mib = 143771 | published | nvidia-smi -q 'FB Memory Usage: Total 143771 MiB' (Reserved 700 MiB) under driver 550.90.12, github.com/thamada/gls gls/H200_smi.py; the same 143771 MiB in https://github.com/NVIDIA/cuda-samples/issues/311
compute_capability = 9.0 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 4800 | published | NVIDIA product specification for NVIDIA H200
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
