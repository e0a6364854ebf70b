# Empty dependencies file for vkmix.
# This may be replaced when dependencies are built.
