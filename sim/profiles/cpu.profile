# memtrack device profile: the CPU host (no GPU). A node 'cpu' has only the CPU budget.
# Format: key = value | measured, published or estimated | source
name = cpu
display_name = CPU host
kind = cpu
cpu_memory_limit_bytes = 17179869184 | estimated | memtrack default CPU limit (16 GiB)
