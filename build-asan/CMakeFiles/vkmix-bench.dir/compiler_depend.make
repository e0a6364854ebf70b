# Empty compiler generated dependencies file for vkmix-bench.
# This may be replaced when dependencies are built.
