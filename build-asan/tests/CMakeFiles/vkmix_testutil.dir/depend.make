# Empty dependencies file for vkmix_testutil.
# This may be replaced when dependencies are built.
