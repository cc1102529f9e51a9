# memtrack device profile: NVIDIA RTX 6000 Ada Generation
# Format: key = value | measured, published or estimated | source (docs/profiles.md)
name = rtx6000-ada
display_name = NVIDIA RTX 6000 Ada Generation
cuda_total_bytes = 51002867712 | published | deviceQuery 'Total amount of global memory: 48640 MBytes (51002867712 bytes)', CUDA driver 12.4, in github.com/thamada/nvidia-smi gls/RTX6000Ada_x8_deviceQuery.py
cuda_total_driver = driver 550.127.05
cuda_total_variants = 50983862272 ~ 1MiB @ an unrecorded driver, PyTorch total_memory=48622MB | published | PyTorch torch.cuda.get_device_properties 'total_memory=48622MB' (whole MiB) in public PyTorch logs
nvidia_smi_total_mib = 49140 | published | nvidia-smi -q 'FB Memory Usage: Total 49140 MiB' under driver 550.127.05, github.com/thamada/nvidia-smi gls/RTX6000Ada_x8_smi.py
compute_capability = 8.9 | published | NVIDIA CUDA GPUs list (https://developer.nvidia.com/cuda-gpus)
memory_bandwidth_gbps = 960 | published | NVIDIA product specification for NVIDIA RTX 6000 Ada Generation
memory_fraction = 0.9 | estimated | memtrack default share of the CUDA total, leaving room for the CUDA context and fragmentation
context_overhead_bytes = 536870912 | estimated | typical CUDA 12/13 context with lazy module loading (CUDA_MODULE_LOADING=LAZY); measure with memtrack probe
allocation_granularity_bytes = 2097152 | estimated | cuMemGetAllocationGranularity minimum on recent NVIDIA GPUs (2 MiB); cudaMalloc rounds large requests to it
