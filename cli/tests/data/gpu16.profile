# A 16 GiB GPU for memtrack report's tests: the serving trace (peak 19.31 GiB) does not fit on it.
name = gpu16
display_name = Test GPU 16 GiB
cuda_total_bytes = 17179869184 | estimated | a test device: 16 GiB exactly
memory_fraction = 0.9 | estimated | memtrack default share
