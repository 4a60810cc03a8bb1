"""BPF filters: libpcap compile, offline interpreter and specialised kernels."""
