# Empty compiler generated dependencies file for vkmix.
# This may be replaced when dependencies are built.
