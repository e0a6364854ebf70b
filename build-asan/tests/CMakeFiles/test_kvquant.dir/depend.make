# Empty dependencies file for test_kvquant.
# This may be replaced when dependencies are built.
